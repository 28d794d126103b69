"""The plugin's settings: ``[tool.mltrack.plugins.system]`` or ``MLTRACK_PLUGINS__SYSTEM__*``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Group = Literal["cpu", "memory", "disk", "network", "gpu", "process"]
GROUPS: tuple[Group, ...] = ("cpu", "memory", "disk", "network", "gpu", "process")


class SystemSettings(BaseModel):
    """What the sampler records for each run, and how often."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True,
        description="sample system metrics for every run this process starts; read at each run start, so "
        "mltrack.configure(plugins={'system': {'enabled': False}}) switches it off for the runs started after it",
    )
    interval_s: float = Field(
        10.0,
        ge=0.5,
        description="seconds between two samples (at least 0.5: psutil and NVML readings are not meaningful faster)",
    )
    groups: list[Group] = Field(
        default_factory=lambda: list(GROUPS),
        description="which groups to sample: cpu, memory, disk, network, gpu, process (a list, or comma-separated)",
    )
    disk_path: str = Field("/", description="the mount point whose usage the disk group reports")
    node_id: str = Field(
        "auto",
        description="inserted after 'system/' in every metric name (system/<node_id>/...), as MLflow's node id; "
        "'auto' uses rank_<RANK> (else rank_<LOCAL_RANK>) in a job of several ranks, '' never inserts one",
    )

    @field_validator("groups", mode="before")
    @classmethod
    def _split_groups(cls, value: Any) -> Any:
        # The environment gives one string: MLTRACK_PLUGINS__SYSTEM__GROUPS=cpu,gpu
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("node_id")
    @classmethod
    def _node_id_is_one_name_segment(cls, value: str) -> str:
        # It becomes part of every metric key: refuse here what would otherwise fail every write.
        if value and not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise ValueError("may hold only letters, digits, '_', '-' and '.'")
        return value
