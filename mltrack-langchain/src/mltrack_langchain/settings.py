"""The plugin's settings: ``[tool.mltrack.plugins.langchain]`` or ``MLTRACK_PLUGINS__LANGCHAIN__*``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LangChainSettings(BaseModel):
    """How LangChain calls are traced into MLTrack runs."""

    model_config = ConfigDict(extra="forbid")

    log_inputs_outputs: bool = Field(
        True, description="record each call's inputs and outputs in the trace (off: names, timings and tokens only)"
    )
    mlflow_traces: bool = Field(
        True,
        description="record each top-level invocation as an MLflow trace of the run (off: metrics and the "
        "JSON-lines export only)",
    )
    max_text_chars: int = Field(
        2000, ge=0, description="longest text kept per input or output value in a trace (longer text is cut)"
    )
