"""The "System metrics" panel on the UI's run page (mltrack-ui calls it through ``ui_run_panels``).

It reads only the run document the UI already has: the latest value of each ``system/`` metric,
and the peaks the sampler wrote as a tag when the run ended. Opening the page costs no store query.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mltrack_system.names import PEAKS_TAG, PREFIX


def _natural(name: str) -> list[Any]:
    # gpu_2 before gpu_10
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: float) -> str:
    return f"{value:,.1f}"


def _peaks(tags: dict[str, Any]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for key, value in tags.items():
        if key != PEAKS_TAG and not key.startswith(PEAKS_TAG + "."):
            continue
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):  # a tag someone else wrote: no peaks from it
            continue
        if isinstance(parsed, dict):
            peaks.update((name, number) for name, v in parsed.items() if (number := _number(v)) is not None)
    return peaks


def system_metrics_panels(run: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A key/value panel: each system metric's latest value, with its peak where the run recorded one."""
    metrics = run.get("metrics") or {}
    names = sorted((name for name in metrics if name.startswith(PREFIX)), key=_natural)
    if not names:
        return None
    peaks = _peaks(run.get("tags") or {})
    data: dict[str, str] = {}
    for name in names:
        latest = _number(metrics[name])
        text = "n/a" if latest is None else _text(latest)
        peak = peaks.get(name)
        if peak is not None and (latest is None or _text(peak) != text):
            text += f" (peak {_text(peak)})"
        data[name.removeprefix(PREFIX)] = text
    return [{"title": "System metrics", "kind": "keyvalue", "data": data}]
