"""The ``local`` deploy provider: the serving app as a background process on this machine.

``deploy`` downloads the model version into MLTrack's model cache and starts
``python -m mltrack serve <that directory>`` in its own session on
127.0.0.1 (a free port unless ``port`` is given), with its output in a log file, and returns
once ``/health`` answers (or raises, with the log's last lines, after stopping the process).
A redeploy of the same name starts the new server first and stops the old one after the new
one is ready, unless both want the same port.

It is a ``ProcessProvider`` (``mltrack.deployment.process_provider``), the helper any provider of the
"a process I start" kind builds on: that module holds the process-group handling, the health
wait and the state folder ``<data_dir>/deployments/local/``. This one says how to start the
server. ``mltrack.deployment.deployments`` holds a lock per name around plan, start and record, so two
deploys of one name take turns.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mltrack.deployment.process_provider import (
    HEALTH_TIMEOUT_S,
    KILL_TIMEOUT_S,
    STOP_TIMEOUT_S,
    TOKEN_ENV,
    ProcessDeploymentConfig,
    ProcessProvider,
    ServerGroup,
    serve_command,
)

__all__ = [
    "HEALTH_TIMEOUT_S",
    "KILL_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "TOKEN_ENV",
    "LocalDeploymentConfig",
    "LocalProvider",
    "LocalSettings",
    "ServerGroup",
]


class LocalDeploymentConfig(ProcessDeploymentConfig):
    """One local deployment (``mltrack deploy MODEL --config port=8011``)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(1, ge=1, le=64, description="server worker processes")
    max_batch_size: int = Field(64, ge=1, le=100_000, description="rows per micro-batch")
    max_wait_ms: float = Field(2.0, ge=0, le=1_000, description="how long a request waits to be batched")


class LocalSettings(BaseModel):
    """``[tool.mltrack.plugins.local]``."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(None, description="interpreter that runs the servers (default: this one)")


class LocalProvider(ProcessProvider[LocalDeploymentConfig]):
    """Serves models from background processes on 127.0.0.1."""

    name = "local"
    Settings = LocalSettings
    DeploymentConfig = LocalDeploymentConfig

    def command(self, config: LocalDeploymentConfig, model_dir: Path, port: int) -> list[str]:
        settings = self.settings
        assert isinstance(settings, LocalSettings)
        return serve_command(
            model_dir,
            config.host,
            port,
            python=settings.python,
            workers=config.workers,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
        )

    def describe(self, config: LocalDeploymentConfig) -> str:
        return f"`mltrack serve` ({config.workers} worker{'s' if config.workers > 1 else ''})"
