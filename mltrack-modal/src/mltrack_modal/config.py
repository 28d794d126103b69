"""The ``modal`` provider's settings and per-deployment config, validated before anything is built.

Modal checks GPU names only on its servers (``gpu="bogus"`` passes locally and fails minutes into a
deploy), so the names, counts and fallback lists are checked here against Modal's documented GPUs.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: Modal's GPU names (``gpu=`` of ``@app.function``), upper case, with the most GPUs one container may have.
#: "A10G" is the older name of "A10"; "H100!" is an H100 never upgraded to an H200; "B200+" may run on a B300.
GPU_MAX_COUNT: dict[str, int] = {
    "T4": 8,
    "L4": 8,
    "A10": 4,
    "A10G": 4,
    "L40S": 8,
    "A100": 8,
    "A100-40GB": 8,
    "A100-80GB": 8,
    "RTX-PRO-6000": 8,
    "H100": 8,
    "H100!": 8,
    "H200": 8,
    "B200": 8,
    "B200+": 8,
}

#: Modal object names (apps, secrets): letters, digits, '-', '.', '_', shorter than 64 characters.
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
#: An app name is also the endpoint's URL label, so it must be a DNS label.
_APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def normalize_gpu(value: str) -> str:
    """One GPU request (``"h100:2"``) in Modal's canonical spelling (``"H100:2"``); raises ValueError."""
    text = value.strip()
    kind, _, count_text = text.partition(":")
    kind = kind.upper()
    if kind not in GPU_MAX_COUNT:
        raise ValueError(f"unknown Modal GPU {value!r}; known: {', '.join(GPU_MAX_COUNT)}")
    if not count_text:
        return kind
    if not count_text.isdigit():
        raise ValueError(f"GPU count in {value!r} must be a whole number, as in 'H100:2'")
    count = int(count_text)
    if not 1 <= count <= GPU_MAX_COUNT[kind]:
        raise ValueError(f"{kind} containers take 1 to {GPU_MAX_COUNT[kind]} GPUs, not {count}")
    return kind if count == 1 else f"{kind}:{count}"


class ModalDeploymentConfig(BaseModel):
    """One Modal deployment (``mltrack.deploy(..., provider="modal", config={...})``)."""

    model_config = ConfigDict(extra="forbid")

    gpu: str | list[str] | None = Field(
        None,
        description="GPU per container: a Modal GPU name (T4, L4, A10G, L40S, A100, A100-80GB, H100, H200, B200, ...), "
        '":N" for several ("H100:2"), or a list tried in order as fallbacks; unset: CPU only',
    )
    cpu: float | None = Field(
        None, gt=0, le=64, description="CPU cores reserved per container (unset: Modal's default)"
    )
    memory: int | None = Field(
        None, ge=128, description="memory reserved per container, in MiB (unset: Modal's default)"
    )
    min_containers: int = Field(
        0, ge=0, le=1000, description="containers kept running without traffic (no cold starts, billed while idle)"
    )
    max_containers: int | None = Field(None, ge=1, le=1000, description="most containers at once (unset: no limit)")
    buffer_containers: int | None = Field(
        None, ge=0, le=1000, description="extra idle containers kept ready while the endpoint is busy"
    )
    scaledown_window: int = Field(60, ge=2, le=3600, description="seconds an idle container waits before it stops")
    timeout: int = Field(300, ge=1, le=86_400, description="seconds one request may run")
    concurrency: int = Field(
        32, ge=1, le=1000, description="requests one container serves at once (the server batches them)"
    )
    secrets: list[str] = Field(
        default_factory=list, description="names of Modal secrets whose variables the container gets"
    )
    app_name: str | None = Field(None, description="Modal app name and URL label (default: mltrack-<deployment name>)")
    environment: str | None = Field(
        None, description="Modal environment (default: the provider setting, else Modal's own default)"
    )
    max_batch_size: int = Field(64, ge=1, le=100_000, description="rows per micro-batch in the serving app")
    max_wait_ms: float = Field(2.0, ge=0, le=1_000, description="how long a request waits to be batched, in ms")
    startup_timeout_s: float = Field(
        900.0,
        gt=0,
        le=3_600,
        description="how long after deploy the endpoint may take to answer /health (image build, cold start, "
        "model load) before it counts as failed",
    )

    @field_validator("gpu")
    @classmethod
    def _check_gpu(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return normalize_gpu(value)
        if not value:
            raise ValueError("a GPU fallback list needs at least one GPU")
        normalized = [normalize_gpu(item) for item in value]
        if len(set(normalized)) != len(normalized):
            raise ValueError(f"the GPU fallback list {value!r} names a GPU twice")
        return normalized

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _OBJECT_NAME.match(name):
                raise ValueError(f"{name!r} is not a Modal secret name (letters, digits, '-', '.', '_'; < 64 chars)")
        if len(set(value)) != len(value):
            raise ValueError("a secret is named twice")
        return value

    @field_validator("app_name")
    @classmethod
    def _check_app_name(cls, value: str | None) -> str | None:
        if value is not None and not _APP_NAME.match(value):
            raise ValueError("must be 1-63 lowercase letters, digits and '-' (it is also the endpoint's URL label)")
        return value

    @field_validator("environment")
    @classmethod
    def _check_environment(cls, value: str | None) -> str | None:
        if value is not None and not _ENVIRONMENT.match(value):
            raise ValueError("is not a Modal environment name (letters, digits, '-', '_'; at most 64 characters)")
        return value

    @model_validator(mode="after")
    def _check_scaling(self) -> ModalDeploymentConfig:
        if self.max_containers is not None and self.min_containers > self.max_containers:
            raise ValueError(
                f"min_containers ({self.min_containers}) is larger than max_containers ({self.max_containers})"
            )
        return self

    def gpu_list(self) -> list[str]:
        """The GPU requests in order of preference (empty: CPU only)."""
        if self.gpu is None:
            return []
        return [self.gpu] if isinstance(self.gpu, str) else list(self.gpu)

    def modal_function_options(self) -> dict[str, Any]:
        """The ``@app.function`` keyword arguments this config sets (Modal's defaults for the rest)."""
        options: dict[str, Any] = {
            "min_containers": self.min_containers,
            "scaledown_window": self.scaledown_window,
            "timeout": self.timeout,
        }
        if self.gpu is not None:
            options["gpu"] = self.gpu
        for key in ("cpu", "memory", "max_containers", "buffer_containers"):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        return options


class ModalSettings(BaseModel):
    """``[tool.mltrack.plugins.modal]`` (or ``MLTRACK_PLUGINS__MODAL__*``): provider-wide settings."""

    model_config = ConfigDict(extra="forbid")

    token_id: SecretStr | None = Field(
        None, description="Modal token id (default: MODAL_TOKEN_ID or the profile that `modal token new` wrote)"
    )
    token_secret: SecretStr | None = Field(
        None, description="Modal token secret (default: MODAL_TOKEN_SECRET or the active profile)"
    )
    workspace: str | None = Field(
        None, description="your Modal workspace, so that `plan` can show the endpoint's exact URL"
    )
    environment: str | None = Field(None, description="Modal environment for deployments that do not name one")

    @model_validator(mode="after")
    def _check_token_pair(self) -> ModalSettings:
        if (self.token_id is None) != (self.token_secret is None):
            raise ValueError("token_id and token_secret go together: set both or neither")
        return self
