"""Autologging for plain PyTorch training loops: any ``torch.optim.Optimizer``, no trainer needed.

``enable()`` adds one global optimizer step post-hook (``register_optimizer_step_post_hook``).
Inside an active MLTrack run it logs:

- on an optimizer's first step in the run, params: ``optimizer.name`` (its class) and its
  hyperparameters from ``param_groups`` (``optimizer.lr`` -- the configured rate, before a
  scheduler changed it -- ``optimizer.momentum``, ``optimizer.betas``, ``optimizer.weight_decay``,
  ...; groups after the first as ``optimizer.group<i>.<key>``), and ``model.parameters``, the
  number of weights it optimizes. A second optimizer with other settings in the same run
  (a GAN's) logs under ``optimizer_2.`` (and ``optimizer_2.model.parameters``), and so on.
- on every step, the metric ``lr`` (``optimizer_2.lr``, ...; ``lr.group<i>`` per extra param
  group) at step = the number of steps taken in this run (1 for the first). This is the only
  per-step work: reading ``group["lr"]`` and ``mltrack.log_metric``, which only enqueues. No
  tensor is read from a GPU and the store is not called.
- when the run finishes (status FINISHED), the module each optimizer trained as the model
  ``model`` (``model_2``, ... for other modules), unless the run already has an artifact of
  that name or ``log_models`` is off in ``[tool.mltrack.plugins.torch]``. The module is found
  once, at the optimizer's first step, as the outermost ``nn.Module`` holding its parameters
  (``torch.compile`` and data-parallel wrappers are unwrapped), and kept until the run ends
  so it is still there when a ``@mltrack.track`` function has returned. The first batch the
  module sees after that step (its first five rows) becomes the input example, so the model
  gets a signature.

Logging never breaks training: a failure is logged once as a warning and training goes on.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

import mltrack
from mltrack.extend import Autologger

if TYPE_CHECKING:
    import torch
    from torch.utils.hooks import RemovableHandle

logger = logging.getLogger("mltrack.torch")

#: param_groups keys that are not hyperparameters: the tensors, the scheduler's copy of lr
#: (logged as ``lr``), and implementation switches
_NOT_HYPERPARAMETERS = frozenset({"params", "initial_lr", "foreach", "fused", "differentiable", "capturable"})
EXAMPLE_ROWS = 5
MODEL_NAME = "model"


class _Series:
    """The ``lr`` metric series of one optimizer prefix in one run."""

    __slots__ = ("names", "prefix", "steps")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.steps = 0
        self.names: list[str] = []

    def metric_names(self, groups: int) -> list[str]:
        if len(self.names) != groups:
            base = "lr" if self.prefix == "optimizer" else f"{self.prefix}.lr"
            self.names = [base if i == 0 else f"{base}.group{i}" for i in range(groups)]
        return self.names


class _OptimizerState:
    __slots__ = ("run_id", "series")

    def __init__(self, run_id: str, series: _Series) -> None:
        self.run_id = run_id
        self.series = series


class _RunLog:
    """What autologging has seen in one run: its lr series and the modules to log at its end."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.series: dict[str, _Series] = {}
        self.modules: list[Any] = []  # strong references until the run ends
        self.examples: dict[int, Any] = {}  # id(module) -> a few input rows (a tensor)
        self.hooks: list[RemovableHandle] = []


# Process-wide, like the hook itself: any TorchAutologger instance (the plugin manager may be
# rebuilt) can undo what another one did.
_lock = threading.RLock()
_handle: RemovableHandle | None = None
_optimizers: weakref.WeakKeyDictionary[Any, _OptimizerState] = weakref.WeakKeyDictionary()
_runs: dict[str, _RunLog] = {}
_warned: set[str] = set()


class TorchAutologger(Autologger):
    """Logs plain PyTorch training; see the module docstring for what is logged."""

    name = "torch"

    @property
    def enabled(self) -> bool:
        return is_enabled()

    def enable(self) -> None:
        global _handle
        from torch.optim.optimizer import register_optimizer_step_post_hook

        with _lock:
            if _handle is None:
                _warned.clear()
                _handle = register_optimizer_step_post_hook(_after_step)

    def disable(self) -> None:
        global _handle
        with _lock:
            if _handle is not None:
                _handle.remove()
                _handle = None
            for run_log in _runs.values():
                _remove_hooks(run_log)
            _runs.clear()
            _optimizers.clear()


def is_enabled() -> bool:
    return _handle is not None


# -- every step --------------------------------------------------------------------------


def _after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    try:
        run = mltrack.active_run()
        if run is None:
            return
        state = _optimizers.get(optimizer)
        if state is None or state.run_id != run.run_id:
            state = _first_step(optimizer, run)
        series = state.series
        series.steps += 1
        groups = optimizer.param_groups
        for name, group in zip(series.metric_names(len(groups)), groups, strict=True):
            lr = group["lr"]
            if type(lr) is not float:
                lr = _host_number(lr)
                if lr is None:
                    continue
            mltrack.log_metric(name, lr, series.steps)
    except Exception as exc:  # never break training over logging
        _warn("log the learning rate", exc)


def _host_number(value: Any) -> float | None:
    """A learning rate as a float, or None where reading it would wait for a GPU."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    device = getattr(value, "device", None)
    if device is not None and getattr(device, "type", "cpu") == "cpu" and getattr(value, "numel", lambda: 0)() == 1:
        return float(value)
    if device is not None:
        _warn("log a learning rate held on a GPU", ValueError(f"lr is a tensor on {device}; reading it would sync"))
    return None


# -- the first step of an optimizer in a run ------------------------------------------------


def _first_step(optimizer: torch.optim.Optimizer, run: mltrack.ActiveRun) -> _OptimizerState:
    with _lock:
        run_log = _runs.get(run.run_id)
        if run_log is None:
            run_log = _runs[run.run_id] = _RunLog(run.run_id)
        prefix, params = _params_to_log(optimizer, run)
        series = run_log.series.get(prefix)
        if series is None:
            series = run_log.series[prefix] = _Series(prefix)
        state = _optimizers[optimizer] = _OptimizerState(run.run_id, series)
    try:
        mltrack.log_params(params, run_id=run.run_id)
    except Exception as exc:
        _warn("log the optimizer's params", exc)
    try:
        _remember_modules(optimizer, run_log)
    except Exception as exc:
        _warn("find the module the optimizer trains", exc)
    return state


def _hyperparameters(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    from mltrack.extend import param_to_string

    found: dict[str, Any] = {"name": type(optimizer).__name__}
    groups = optimizer.param_groups
    for index, group in enumerate(groups):
        scope = "" if index == 0 else f"group{index}."
        for key, value in group.items():
            if key in _NOT_HYPERPARAMETERS or value is None:
                continue
            if key == "lr" and group.get("initial_lr") is not None:
                value = group["initial_lr"]  # what was configured, before a scheduler changed it
            try:
                param_to_string(key, value)
            except Exception:
                continue  # not a loggable value: leave it out
            found[scope + key] = value
    if len(groups) > 1:
        found["param_groups"] = len(groups)
    return found


def _parameter_count(optimizer: torch.optim.Optimizer) -> int:
    unique = {id(p): p for group in optimizer.param_groups for p in group["params"]}
    return sum(p.numel() for p in unique.values())


def _params_to_log(optimizer: torch.optim.Optimizer, run: mltrack.ActiveRun) -> tuple[str, dict[str, Any]]:
    """The prefix and params of an optimizer: ``optimizer.`` unless the run already holds
    other values under it (params cannot change), then ``optimizer_2.``, ..."""
    from mltrack.extend import param_to_string

    hyper = _hyperparameters(optimizer)
    count = _parameter_count(optimizer)
    for n in itertools.count(1):
        prefix = "optimizer" if n == 1 else f"optimizer_{n}"
        params = {f"{prefix}.{key}": value for key, value in hyper.items()}
        params["model.parameters" if n == 1 else f"{prefix}.model.parameters"] = count
        if all(run.params.get(key) in (None, param_to_string(key, value)) for key, value in params.items()):
            return prefix, params
    raise AssertionError("unreachable")


def _remember_modules(optimizer: torch.optim.Optimizer, run_log: _RunLog) -> None:
    """Keep the modules the optimizer trains until the run ends, and catch an input example."""
    for root, compiled in _owning_modules(optimizer):
        if any(m is root for m in run_log.modules):
            continue
        run_log.modules.append(root)
        if not compiled:  # a hook on a compiled module's inner module would make it recompile
            _catch_example(root, run_log)


def _owning_modules(optimizer: torch.optim.Optimizer) -> list[tuple[Any, bool]]:
    """The outermost modules holding the optimizer's parameters, unwrapped, each with whether
    it was wrapped by ``torch.compile``. One pass over the garbage collector's objects."""
    import torch

    from mltrack_torch.devices import unwrap

    module_type = torch.nn.Module
    params = [p for group in optimizer.param_groups for p in group["params"]]
    wanted = {id(p) for p in params}
    parent: dict[int, Any] = {}
    owner: dict[int, Any] = {}
    for obj in _all_objects():
        if not issubclass(type(obj), module_type):  # type(): no __class__ lookup on lazy proxies
            continue
        for child in obj._modules.values():
            if child is not None:
                parent.setdefault(id(child), obj)
        for param in obj._parameters.values():
            if param is not None and id(param) in wanted:
                owner.setdefault(id(param), obj)
    roots: dict[int, Any] = {}
    for param in params:
        module = owner.get(id(param))
        if module is None:
            continue
        seen: set[int] = set()
        while id(module) in parent and id(module) not in seen:
            seen.add(id(module))
            module = parent[id(module)]
        roots.setdefault(id(module), module)
    found: dict[int, tuple[Any, bool]] = {}
    for root in roots.values():
        inner = unwrap(root)
        compiled = any(type(m).__name__ == "OptimizedModule" for m in (root, getattr(root, "module", None)))
        found.setdefault(id(inner), (inner, compiled))
    return list(found.values())


def _all_objects() -> list[Any]:
    """Every object the garbage collector tracks, frozen ones included.

    MLTrack's store freezes the objects alive when it connects (``gc.freeze()``, so full
    collections stay short), which hides them, the user's model among them, from
    ``gc.get_objects()``: unfreeze for the scan, then freeze again (both are O(1) list moves).
    """
    if not gc.get_freeze_count():
        return gc.get_objects()
    gc.unfreeze()
    try:
        return gc.get_objects()
    finally:
        gc.freeze()


def _catch_example(module: torch.nn.Module, run_log: _RunLog) -> None:
    """Keep the first rows of the next batch the module is called with (a one-shot hook: no
    cost after that call, and no GPU sync: the rows are copied on their device)."""
    import torch

    handle: RemovableHandle | None = None

    def keep_first_rows(mod: torch.nn.Module, args: tuple[Any, ...]) -> None:
        try:
            if handle is not None:
                handle.remove()
            if len(args) == 1 and isinstance(args[0], torch.Tensor) and args[0].dim() >= 1:
                run_log.examples[id(mod)] = args[0][:EXAMPLE_ROWS].detach().clone()
        except Exception as exc:
            _warn("keep an input example", exc)

    handle = module.register_forward_pre_hook(keep_first_rows)
    run_log.hooks.append(handle)


def _remove_hooks(run_log: _RunLog) -> None:
    for handle in run_log.hooks:
        handle.remove()
    run_log.hooks.clear()


# -- the end of a run -----------------------------------------------------------------------


def log_models_at_run_end(run: mltrack.ActiveRun, status: str) -> None:
    """Log the modules a finishing run trained (called by the plugin's ``on_run_end``)."""
    with _lock:
        run_log = _runs.pop(run.run_id, None)
    if run_log is None:
        return
    _remove_hooks(run_log)
    if status != "FINISHED" or not run_log.modules:
        return
    try:
        from mltrack.extend import plugin_settings

        if not plugin_settings("torch").log_models:
            return
    except Exception as exc:
        _warn("read the torch plugin's settings", exc)
        return
    for index, module in enumerate(run_log.modules):
        name = MODEL_NAME if index == 0 else f"{MODEL_NAME}_{index + 1}"
        try:
            _log_model(run, module, name, run_log.examples.get(id(module)))
        except Exception as exc:
            _warn(f"log the trained model {name!r}", exc)


def _log_model(run: mltrack.ActiveRun, module: Any, name: str, example: Any) -> None:
    from mltrack import InvalidInputError, log_model

    if run.store.client.list_artifacts(run.run_id, name):
        logger.info("mltrack: run %s already has an artifact %r; the trained model is not logged over it", run, name)
        return
    rows = _as_numpy(example)
    try:
        log_model(module, name, input_example=rows, run_id=run.run_id)
    except InvalidInputError as exc:
        if rows is None or exc.field != "input_example":
            raise
        log_model(module, name, run_id=run.run_id)  # the example does not fit: no signature then


def _as_numpy(example: Any) -> Any:
    if example is None:
        return None
    try:
        return example.to("cpu").numpy()
    except Exception:  # a dtype numpy lacks (bfloat16): no example
        return None


def _warn(what: str, exc: BaseException) -> None:
    if what in _warned:
        return
    _warned.add(what)
    text = str(exc).splitlines()[0] if str(exc) else ""
    logger.warning(
        "mltrack: torch autologging could not %s: %s%s", what, type(exc).__name__, f": {text}" if text else ""
    )
