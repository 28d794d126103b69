"""Hook implementations of the ``system`` plugin: a sampler per run, started and stopped by the run hooks.

psutil, NVML and pydantic are imported only when a run starts; ``mltrack --help`` imports none of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import mltrack


@mltrack.hookimpl
def register_settings(register: Callable[[type[Any]], None]) -> None:
    from mltrack_system.settings import SystemSettings

    register(SystemSettings)


@mltrack.hookimpl
def on_run_start(run: Any) -> None:
    from mltrack_system.sampler import start_sampling

    start_sampling(run.run_id)


@mltrack.hookimpl
def on_run_end(run: Any) -> None:
    sampler = sys.modules.get("mltrack_system.sampler")
    if sampler is not None:  # not imported: no run of this process was sampled
        sampler.stop_sampling(run.run_id)


# A mltrack-ui hook: optionalhook keeps this plugin loading where mltrack-ui is not installed.
@mltrack.hookimpl(optionalhook=True)
def ui_run_panels(run: dict[str, Any]) -> list[dict[str, Any]] | None:
    from mltrack_system.ui_panel import system_metrics_panels

    return system_metrics_panels(run)
