"""The UI's settings: ``[tool.mltrack.plugins.ui]`` or ``MLTRACK_PLUGINS__UI__*``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050


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
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A short token on a network-facing server is guessable; refuse it rather than warn.
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value
