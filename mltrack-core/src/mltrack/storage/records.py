"""The plain records the background writer hands to sinks (no MLflow import needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Metric(NamedTuple):
    key: str
    value: float
    timestamp: int  # milliseconds since the epoch
    step: int


class Param(NamedTuple):
    key: str
    value: str


class Tag(NamedTuple):
    key: str
    value: str


@dataclass
class Batch:
    """Data for one run, within MLflow's per-request limits."""

    run_id: str
    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)
