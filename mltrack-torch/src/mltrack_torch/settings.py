"""The plugin's settings: ``[tool.mltrack.plugins.torch]`` or ``MLTRACK_PLUGINS__TORCH__*``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TorchSettings(BaseModel):
    """How PyTorch training is autologged."""

    model_config = ConfigDict(extra="forbid")

    log_models: bool = Field(
        True, description="log the module each optimizer trained as a model when a run finishes (off: params and lr)"
    )
