"""Hook implementations of the ``torch`` plugin (no framework import at module level)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import mltrack


@mltrack.hookimpl
def register_settings(register: Callable[[type[Any]], None]) -> None:
    from mltrack_torch.settings import TorchSettings

    register(TorchSettings)


@mltrack.hookimpl
def register_flavours(register: Callable[[Any], None]) -> None:
    from mltrack_torch.flavour import TorchFlavour, TorchStateDictFlavour

    register(TorchFlavour())
    register(TorchStateDictFlavour())


@mltrack.hookimpl
def infer_flavour(model: Any) -> str | None:
    torch = sys.modules.get("torch")
    if torch is None:  # not imported: the model cannot be a torch one
        return None
    from mltrack_torch.state_dict import StateDict

    if isinstance(model, StateDict):
        return "torch-state-dict"
    return "torch" if isinstance(model, torch.nn.Module) else None


@mltrack.hookimpl
def register_autologgers(register: Callable[[Any], None]) -> None:
    from mltrack_torch.autolog import TorchAutologger

    register(TorchAutologger())


@mltrack.hookimpl
def on_run_end(run: Any, status: str) -> None:
    autolog = sys.modules.get("mltrack_torch.autolog")
    if autolog is not None and autolog.is_enabled():
        autolog.log_models_at_run_end(run, status)


# A mltrack-ui hook: optionalhook keeps this plugin loading where mltrack-ui is not installed.
@mltrack.hookimpl(optionalhook=True)
def ui_model_panels(model: dict[str, Any]) -> list[dict[str, Any]] | None:
    from mltrack_torch.ui_panel import model_summary_panels

    return model_summary_panels(model)
