"""``@mltrack.track``: a run around a function call.

Rules:
- Arguments become params. Scalars are stored as-is; dicts are flattened to dotted
  names (``config.lr``); lists/tuples of scalars as JSON; ``self``/``cls`` are skipped;
  any other object is recorded by its type (``<ndarray shape=(100, 3)>``) so the call
  still shows what it got without storing the data.
- A returned dict's numeric values (nested dicts flattened) become metrics; other
  values are ignored. Any return value is passed through unchanged.
- ``mltrack.duration_s`` records the wall time; an exception marks the run FAILED,
  records its type and message as tags and the traceback as ``error/traceback.txt``,
  and is re-raised.
- Inside an active run the decorated call becomes a child run.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, overload

from mltrack.errors import InvalidInputError
from mltrack.storage.validation import MAX_PARAM_VALUE_LENGTH, SCALAR_TYPES, flatten
from mltrack.tracking import runs
from mltrack.tracking.autologging import autolog, enabled
from mltrack.tracking.logging_api import log_metrics, log_params, log_text, set_tags

F = TypeVar("F", bound=Callable[..., Any])

DURATION_METRIC = "mltrack.duration_s"


def describe_object(value: Any) -> str:
    """A short stand-in for an argument that is not a loggable value."""
    name = type(value).__name__
    shape = getattr(value, "shape", None)
    if shape is not None:
        try:
            return f"<{name} shape={tuple(shape)}>"
        except TypeError:
            pass
    if hasattr(value, "__len__"):
        try:
            return f"<{name} len={len(value)}>"
        except TypeError:
            pass
    return f"<{name}>"


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, SCALAR_TYPES):
        if isinstance(value, str) and len(value) > MAX_PARAM_VALUE_LENGTH:
            return value[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
        return value
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, SCALAR_TYPES) for v in value):
        text = json.dumps(list(value))
        return text if len(text) <= MAX_PARAM_VALUE_LENGTH else describe_object(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return describe_object(value)


def params_from_call(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The params a call records, following the module's rules."""
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    params: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if name in ("self", "cls"):
            continue
        kind = inspect.signature(func).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD and isinstance(value, dict):
            source: dict[str, Any] = value
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            source = {f"{name}.{i}": v for i, v in enumerate(value)}
        else:
            source = {name: value}
        for key, item in flatten(source).items():
            params[key] = _param_value(item)
    return params


def metrics_from_result(result: Any) -> dict[str, float]:
    if not isinstance(result, dict):
        return {}
    metrics: dict[str, float] = {}
    for key, value in flatten(result).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
                value = value.item()
            else:
                continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[str(key)] = float(value)
    return metrics


class _TrackedCall:
    def __init__(self, func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.func = func
        self.options = options
        self._switched_on: dict[str, list[str]] = {}  # by run id: concurrent calls share this object

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[runs.ActiveRun, float]:
        opts = self.options
        if opts["autolog"]:
            before = enabled()
            switched = autolog(*([] if opts["autolog"] is True else list(opts["autolog"])))
            switched_on = [name for name in switched if name not in before]
        nested = runs._stack.get() != ()
        run = runs.start_run(
            opts["run_name"] or self.func.__qualname__,
            experiment=None if nested else opts["experiment"],
            nested=nested,
            tags=opts["tags"],
        )
        if opts["log_args"]:
            log_params(params_from_call(self.func, args, kwargs), run_id=run.run_id)
        if opts["autolog"]:
            self._switched_on[run.run_id] = switched_on
        return run, time.perf_counter()

    def finish(self, run: runs.ActiveRun, started: float, result: Any) -> None:
        if self.options["log_result"]:
            log_metrics(metrics_from_result(result), run_id=run.run_id)
        log_metrics({DURATION_METRIC: time.perf_counter() - started}, run_id=run.run_id)
        runs.end_run("FINISHED", run=run)
        self._autolog_off(run)

    def _autolog_off(self, run: runs.ActiveRun) -> None:
        # only what this call switched on: a global mltrack.autolog() stays on
        switched = self._switched_on.pop(run.run_id, [])
        if switched:
            autolog(*switched, disable=True)

    def fail(self, run: runs.ActiveRun, started: float, exc: BaseException) -> None:
        try:
            log_metrics({DURATION_METRIC: time.perf_counter() - started}, run_id=run.run_id)
            set_tags(
                {"mltrack.error.type": type(exc).__name__, "mltrack.error.message": str(exc)[:8000]},
                run_id=run.run_id,
            )
            log_text("".join(traceback.format_exception(exc)), "error/traceback.txt", run_id=run.run_id)
        finally:
            runs.end_run(runs.status_for_exception(exc), run=run, error=exc)
            self._autolog_off(run)


@overload
def track(func: F) -> F: ...


@overload
def track(
    func: None = None,
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    log_args: bool = True,
    log_result: bool = True,
) -> Callable[[F], F]: ...


def track(
    func: Callable[..., Any] | None = None,
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    tags: dict[str, Any] | None = None,
    log_args: bool = True,
    log_result: bool = True,
    autolog: bool | list[str] = False,
) -> Any:
    """Run the decorated function (sync or async) inside an MLTrack run.

    Usable bare (``@track``) or configured (``@track(experiment="exp")``).
    ``autolog=True`` (or a list of autologger names) switches framework autologging on
    for this call's run only.
    """
    options = {
        "experiment": experiment,
        "run_name": run_name,
        "tags": tags,
        "log_args": log_args,
        "log_result": log_result,
        "autolog": autolog,
    }

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        call = _TrackedCall(fn, options)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                run, started = call.start(args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    call.fail(run, started, exc)
                    raise
                call.finish(run, started, result)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run, started = call.start(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                call.fail(run, started, exc)
                raise
            call.finish(run, started, result)
            return result

        return wrapper

    if func is not None:
        if not callable(func):
            raise InvalidInputError("track", func, "expects a function; use @track or @track(experiment=...)")
        return decorate(func)
    return decorate
