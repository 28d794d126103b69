"""Who may use the UI: nobody but this machine by default, a token holder or a user named by a
trusted authenticating proxy otherwise.

Bound to a loopback address with no authentication configured, the UI answers only requests whose
``Host`` is a loopback name (so a web page on another origin cannot reach it by DNS
rebinding). The ``Host`` header is parsed strictly -- a hostname or an IP address (IPv6 in
brackets) and an optional numeric port, nothing else -- so ``localhost:5050@evil.com`` or
``[::1].evil.com`` is refused rather than read as localhost. With a token, every API route
(``/api/...`` and plugin routes under ``/-/``) needs it, as ``Authorization: Bearer <token>``
or as the session cookie that ``POST /api/auth/login`` sets; ``POST /api/auth/logout`` is
accepted only from the UI's own origin. Behind an authenticating reverse proxy, a user header
is believed only when the connection comes from one of the configured proxy addresses. The
static pages hold no data and are served to anyone.

Session cookies are ``v1.<issued at>.<HMAC>``: the key is the configured session secret, or
one derived from the token, so every replica (and a restarted process) accepts what another
issued; the MAC covers a digest of the token, so changing the token (or the secret) ends every
session, and the issue time bounds a cookie's life whatever the browser keeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mltrack import ConfigError
from mltrack_ui.settings import (
    DEFAULT_SESSION_MAX_AGE_S,
    TOKEN_HINT,
    parse_network,
    session_secret_problem,
    token_problem,
)

SESSION_COOKIE = "mltrack_ui_session"
SESSION_VERSION = "v1"
SESSION_KEY_LABEL = b"mltrack-ui session key v1"
# How far ahead of this replica's clock another replica's issue time may be.
CLOCK_SKEW_S = 300
# A proxy's user name is shown in the page; a longer value is not a user name.
MAX_USER_LENGTH = 256
PUBLIC_API_PATHS = frozenset({"/api/auth", "/api/auth/login", "/api/auth/logout"})
# RFC 3986's host (an IPv6 literal in brackets, or a DNS name / IPv4 address) and an optional
# port; ASCII only (re.ASCII), since a browser sends a punycoded name.
_HOST_HEADER = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?))"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header (lowercase; IPv6 without brackets), or None unless the
    header is exactly ``host`` or ``host:port``."""
    match = _HOST_HEADER.fullmatch(header)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    if match["ipv6"] is not None:
        try:
            return str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError:
            return None
    return match["name"].lower()


def same_origin(request: Request) -> bool:
    """True when a browser says the request comes from a page of this UI.

    ``Sec-Fetch-Site`` (every current browser sends it) is asked first, then ``Origin``
    against ``Host``. A request with neither is not from a browser page, so no other site
    can have caused it -- but nothing else needs the cookie routes either, so it is refused.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    host = request.headers.get("host", "").lower()
    if origin is None or not host:
        return False
    return urlsplit(origin).netloc.lower() == host


@dataclass(frozen=True)
class Identity:
    """How a request was let in, and by whom when a proxy named the user."""

    method: Literal["open", "token", "session", "proxy"]
    user: str | None = None


class ProxyIdentity:
    """The user header of an authenticating reverse proxy, believed only from its addresses."""

    def __init__(self, header: str, proxies: Sequence[str]) -> None:
        if not proxies:
            raise ConfigError(
                f"the UI's trusted_proxy_user_header ({header}) needs trusted_proxies",
                hint="set trusted_proxies to the address (or CIDR block) of your authenticating proxy",
            )
        try:
            self.networks = tuple(parse_network(entry) for entry in proxies)
        except ValueError as exc:
            raise ConfigError(f"the UI's {exc}", hint="list IP addresses or CIDR blocks") from None
        self.header = header

    def trusts(self, peer: str | None) -> bool:
        """Whether the connection's own peer address (not a forwarded one) is a trusted proxy."""
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False  # no peer (a UNIX socket) or not an address: never trusted
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.networks)

    def user(self, request: Request) -> str | None:
        """The user the proxy named, or None (untrusted peer, no header, or an unusable value)."""
        if not self.trusts(request.client.host if request.client else None):
            return None
        value = request.headers.get(self.header, "").strip()
        # Header bytes reach us as latin-1; a proxy that names "José" sends UTF-8.
        with contextlib.suppress(UnicodeError):
            value = value.encode("latin-1").decode("utf-8")
        if not value or len(value) > MAX_USER_LENGTH or not value.isprintable():
            return None
        return value


class AuthPolicy:
    """The rule in force for one app: open to loopback, or token- and/or proxy-protected."""

    def __init__(
        self,
        host: str,
        token: str | None,
        *,
        session_secret: str | None = None,
        session_max_age_s: int = DEFAULT_SESSION_MAX_AGE_S,
        proxy: ProxyIdentity | None = None,
    ) -> None:
        if token is None and proxy is None and not is_loopback(host):
            raise ConfigError(
                f"refusing to serve the UI on {host!r} without authentication: anyone who can reach that "
                "address could read every run and model",
                hint="set MLTRACK_PLUGINS__UI__AUTH_TOKEN (or auth_token in [tool.mltrack.plugins.ui]), "
                "or trusted_proxy_user_header behind an authenticating proxy, or bind 127.0.0.1",
            )
        problem = None if token is None else token_problem(token)
        if problem is not None:
            raise ConfigError(f"the UI's auth_token {problem}", hint=TOKEN_HINT)
        problem = None if session_secret is None else session_secret_problem(session_secret)
        if problem is not None:
            raise ConfigError(
                f"the UI's session_secret {problem}",
                hint=f"set MLTRACK_PLUGINS__UI__SESSION_SECRET to the same value on every replica; {TOKEN_HINT}",
            )
        self.host = host
        self.proxy = proxy
        self.session_max_age_s = session_max_age_s
        self._token = token
        self._session_key = b""
        self._token_digest = b""
        if token is not None:
            # Without a configured secret the key comes from the token, so every replica with the
            # same token agrees on it and a restart keeps sessions. Either way it is derived under
            # a label rather than used as is: the cookies get a key of their own (key separation).
            secret = session_secret.encode() if session_secret is not None else token.encode()
            self._session_key = hmac.new(secret, SESSION_KEY_LABEL, hashlib.sha256).digest()
            self._token_digest = hashlib.sha256(token.encode()).digest()

    @property
    def required(self) -> bool:
        return self._token is not None or self.proxy is not None

    @property
    def token_login(self) -> bool:
        """Whether there is a token to log in with (a proxy-only UI has none)."""
        return self._token is not None

    def _session_mac(self, issued_at: int) -> str:
        message = f"{SESSION_VERSION}.{issued_at}.".encode() + self._token_digest
        return hmac.new(self._session_key, message, hashlib.sha256).hexdigest()

    def session_value(self, issued_at: int | None = None) -> str:
        """A session cookie's value, issued now (or at ``issued_at``, in Unix seconds)."""
        assert self._token is not None
        issued = int(time.time()) if issued_at is None else issued_at
        return f"{SESSION_VERSION}.{issued}.{self._session_mac(issued)}"

    def session_valid(self, cookie: str) -> bool:
        """Whether ``cookie`` was issued with this key and token and has not yet expired."""
        if self._token is None:
            return False
        version, _, rest = cookie.partition(".")
        issued_text, _, mac = rest.partition(".")
        if version != SESSION_VERSION or not (issued_text.isascii() and issued_text.isdigit()):
            return False
        if len(issued_text) > 12:  # far past any real clock; keeps int() cheap on junk
            return False
        issued = int(issued_text)
        if str(issued) != issued_text:
            return False  # one spelling per time ("0123" is not 123)
        now = time.time()
        # Replicas' clocks differ a little: a cookie from a moment "ahead" is still fine.
        if not now - self.session_max_age_s <= issued <= now + CLOCK_SKEW_S:
            return False
        return hmac.compare_digest(mac.encode(), self._session_mac(issued).encode())

    def token_matches(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token.encode())

    def identify(self, request: Request) -> Identity | None:
        """Who is asking, or None when the request is not authenticated."""
        if self.proxy is not None:
            user = self.proxy.user(request)
            if user is not None:
                return Identity("proxy", user)
        if not self.required:
            return Identity("open")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and self.token_matches(header[7:].strip()):
            return Identity("token")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None and self.session_valid(cookie):
            return Identity("session")
        return None

    def is_authenticated(self, request: Request) -> bool:
        return self.identify(request) is not None

    def host_allowed(self, name: str) -> bool:
        """Whether a request addressed to host ``name`` (from ``host_name``) is answered."""
        if self.required:
            return True  # the token or the proxy is the guard; any Host may carry it
        return is_loopback(name)

    def login_hint(self) -> str:
        if self.token_login:
            return "log in with the UI's token"
        return "sign in through the authenticating proxy in front of this UI"


def is_protected(path: str) -> bool:
    return (path.startswith("/api/") and path not in PUBLIC_API_PATHS) or path.startswith("/-/")


def auth_middleware(
    policy: AuthPolicy,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        name = host_name(request.headers.get("host", ""))
        if name is None:
            return JSONResponse(
                {"error": "malformed Host header", "hint": "send Host as a hostname or IP address, and a port"},
                status_code=400,
            )
        if not policy.host_allowed(name):
            return JSONResponse(
                {
                    "error": "this UI answers only requests addressed to localhost",
                    "hint": "open it as http://localhost:<port>/, or give it an auth token to serve other names",
                },
                status_code=403,
            )
        if is_protected(request.url.path) and not policy.is_authenticated(request):
            return JSONResponse(
                {"error": "authentication required", "hint": policy.login_hint()},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return check
