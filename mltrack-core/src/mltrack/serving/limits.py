"""The serving app's limits: request body size, concurrent requests, graceful shutdown.

Each is an argument of ``serve``, ``create_app`` and ``create_lazy_app`` and an option of
``mltrack serve``; one not given comes from the environment (``MLTRACK_SERVE_MAX_BODY_SIZE``,
``MLTRACK_SERVE_MAX_CONCURRENCY``, ``MLTRACK_SERVE_SHUTDOWN_TIMEOUT_S``, or the same names in
``.env``), else the default. The SageMaker and Modal containers have no command line of
their own: the environment is how their limits are set.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ByteSize, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mltrack.errors import InvalidInputError

ENV_PREFIX = "MLTRACK_SERVE_"

DEFAULT_MAX_BODY_SIZE = 100 * 1024**2
DEFAULT_MAX_CONCURRENCY = 128
#: SageMaker kills a container 30 s after SIGTERM; the rest of the exit must fit in what is left
DEFAULT_SHUTDOWN_TIMEOUT_S = 15


class ServingLimits(BaseSettings):
    """What one server process (one worker) accepts before it refuses."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="forbid", frozen=True)

    max_body_size: ByteSize = Field(
        ByteSize(DEFAULT_MAX_BODY_SIZE),
        gt=0,
        description="largest request body (bytes, or with a unit: '100MiB', '5MB'); larger ones get 413",
    )
    max_concurrency: int = Field(
        DEFAULT_MAX_CONCURRENCY,
        ge=1,
        le=1_000_000,
        description="most scoring requests a worker handles at once (reading, queued or predicting); "
        "more get 503 with Retry-After",
    )
    shutdown_timeout_s: int = Field(
        DEFAULT_SHUTDOWN_TIMEOUT_S,
        ge=0,
        le=3_600,
        description="after SIGTERM, how long requests in flight may take to finish before they are cut off",
    )


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def serving_limits(**given: Any) -> ServingLimits:
    """The limits in force: ``given`` values (None: not given), else the environment, else
    the defaults. Raises ``InvalidInputError`` naming the setting, its value and where it came from."""
    explicit = {name: value for name, value in given.items() if value is not None}
    try:
        return ServingLimits(**explicit)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "limits"
        if field in explicit:
            where, hint = "", None
        elif env_name(field) in os.environ:
            where, hint = f" (from {env_name(field)})", f"fix or unset the environment variable {env_name(field)}"
        else:
            where, hint = " (from .env)", f"fix {env_name(field)} in .env"
        raise InvalidInputError(field, error.get("input"), f"{error['msg']}{where}", hint=hint) from None
