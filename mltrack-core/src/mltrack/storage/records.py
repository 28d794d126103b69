"""The plain records the background writer hands to sinks (no MLflow import needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple


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


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN and ±infinity float, nested in dicts, lists and tuples (tuples come
    back as lists), replaced by ``None``.

    NaN and infinity are not JSON: ``json.dumps`` writes bare ``NaN``/``Infinity`` tokens that
    ``jq`` and the browsers' ``JSON.parse`` reject. ``mltrack ... --json`` and the UI's API send
    them as ``null`` through this; a plugin that answers JSON (a UI router, a provider's status
    document) should too.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
