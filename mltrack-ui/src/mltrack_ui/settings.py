"""The UI's settings: ``[tool.mltrack.plugins.ui]`` or ``MLTRACK_PLUGINS__UI__*``."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050
# Anyone who can reach a network-facing UI may guess at its token: 16 characters of a
# generated token are far out of reach; 8 typed ones (or 8 spaces) are not.
MIN_TOKEN_LENGTH = 16
# The session secret is never typed at a login form: it is an HMAC key, so it gets a key's
# length (32 characters of token_urlsafe carry 192 bits).
MIN_SESSION_SECRET_LENGTH = 32
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
DEFAULT_SESSION_MAX_AGE_S = 7 * 24 * 3600
# Browsers cap a cookie's lifetime at 400 days (RFC 6265bis); a longer max age would lie.
MAX_SESSION_MAX_AGE_S = 400 * 24 * 3600
# An HTTP field name (RFC 9110 "token").
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers a client or the HTTP stack itself owns: naming one would let every client pick a user.
_RESERVED_HEADERS = frozenset({"authorization", "cookie", "host", "content-length", "content-type"})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def token_problem(token: str) -> str | None:
    """What makes ``token`` unfit to guard the UI, or None when it will do."""
    if not token.strip():
        return "must not be blank"
    if token != token.strip():
        # An Authorization header's value is trimmed, so such a token could never match.
        return "must not start or end with whitespace"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"must be at least {MIN_TOKEN_LENGTH} characters"
    return None


def session_secret_problem(secret: str) -> str | None:
    """What makes ``secret`` unfit as the session cookies' HMAC key, or None."""
    if not secret.strip():
        return "must not be blank"
    if len(secret) < MIN_SESSION_SECRET_LENGTH:
        return f"must be at least {MIN_SESSION_SECRET_LENGTH} characters"
    return None


def parse_network(entry: str) -> IPNetwork:
    """``10.0.0.5`` or ``10.0.0.0/24`` (IPv6 too) as a network; ValueError naming the entry."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"trusted_proxies entry {entry!r} is not an IP address or CIDR block "
            "(e.g. 10.0.0.5 or 10.0.0.0/24; host names are not resolved)"
        ) from None


def normal_origin(entry: str) -> str:
    """``entry`` as a browser sends it in ``Origin`` (no trailing slash), else a ValueError saying the fix."""
    parts = urlsplit(entry.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(
            f"{entry!r} is not an origin: write scheme://host[:port], e.g. https://mltrack.example.com "
            "(no path, no wildcard)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


class UISettings(BaseModel):
    """Where ``mltrack ui`` listens and who may use it."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        DEFAULT_HOST,
        description="address to bind; any non-loopback address requires auth_token or trusted_proxy_user_header",
    )
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="port to bind (0: any free port)")
    auth_token: SecretStr | None = Field(
        None,
        description="token (or password) every API request must present; required when host is not loopback",
    )
    session_secret: SecretStr | None = Field(
        None,
        description="HMAC key of the login cookies, the same on every replica (default: derived from auth_token)",
    )
    session_max_age_s: int = Field(
        DEFAULT_SESSION_MAX_AGE_S,
        ge=60,
        le=MAX_SESSION_MAX_AGE_S,
        description="seconds a login cookie stays valid after the login that issued it",
    )
    trusted_proxy_user_header: str | None = Field(
        None,
        description="header holding the user name set by an authenticating reverse proxy (e.g. X-Forwarded-User); "
        "believed only from trusted_proxies",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or CIDR blocks of the proxies allowed to set trusted_proxy_user_header "
        "(a list, or comma-separated)",
    )
    refresh_deployments: bool = Field(
        True, description="ask deploy providers for live status when the deployments page loads"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) whose pages may call the API with credentials, e.g. a front "
        "end hosted on Vercel (a list, or comma-separated); empty: the UI's own origin only",
    )

    artifacts_server: str | None = Field(
        None,
        description="the tracking server (http(s)://host:port) whose proxy serves runs' mlflow-artifacts:/ "
        "artifacts, for a UI that reads the database directly (e.g. a read replica)",
    )

    write_tracking_uri: str | None = Field(
        None,
        description="the store the UI's actions write to (rename, tags, notes, delete and restore, aliases, "
        "saved views), for a UI that reads a read replica: the primary (its database URI or its tracking "
        "server); empty: the store the UI reads",
    )

    @field_validator("write_tracking_uri")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @field_validator("artifacts_server")
    @classmethod
    def _a_server(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                f"{value!r} is not a tracking server address: write http(s)://host:port, e.g. http://mlflow:5000"
            )
        return value.strip().rstrip("/")

    @field_validator("auth_token")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Refused at start rather than warned about: the server would otherwise run guessable.
        problem = None if value is None else token_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"{problem} ({TOKEN_HINT})")
        return value

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        problem = None if value is None else session_secret_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"{problem} ({TOKEN_HINT})")
        return value

    @field_validator("trusted_proxy_user_header")
    @classmethod
    def _a_header_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be an HTTP header name (letters, digits and '-'), e.g. X-Forwarded-User")
        if value.lower() in _RESERVED_HEADERS:
            raise ValueError("must be a header only your proxy sets, e.g. X-Forwarded-User")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # The environment gives one string: MLTRACK_PLUGINS__UI__TRUSTED_PROXIES=10.0.0.5,10.1.0.0/16
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        # An allow-list, never a wildcard: credentialed CORS with "*" would let every site use a login.
        return [normal_origin(entry) for entry in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_network(entry)
        return value

    @model_validator(mode="after")
    def _header_needs_proxies(self) -> UISettings:
        # A header believed from every peer would let anyone who reaches the UI name any user.
        if self.trusted_proxy_user_header is not None and not self.trusted_proxies:
            raise ValueError(
                "trusted_proxy_user_header is set but trusted_proxies is empty: set trusted_proxies to the "
                "address (or CIDR block) of your authenticating proxy"
            )
        return self
