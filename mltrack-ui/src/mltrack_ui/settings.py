"""The UI's settings: ``[tool.mltrack.plugins.ui]`` or ``MLTRACK_PLUGINS__UI__*``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050
# Anyone who can reach a network-facing UI may guess at its token: 16 characters of a
# generated token are far out of reach; 8 typed ones (or 8 spaces) are not.
MIN_TOKEN_LENGTH = 16
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


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


class UISettings(BaseModel):
    """Where ``mltrack ui`` listens and who may use it."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(DEFAULT_HOST, description="address to bind; any non-loopback address requires auth_token")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="port to bind (0: any free port)")
    auth_token: SecretStr | None = Field(
        None,
        description="token (or password) every API request must present; required when host is not loopback",
    )
    refresh_deployments: bool = Field(
        True, description="ask deploy providers for live status when the deployments page loads"
    )

    @field_validator("auth_token")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # Refused at start rather than warned about: the server would otherwise run guessable.
        problem = None if value is None else token_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"{problem} ({TOKEN_HINT})")
        return value
