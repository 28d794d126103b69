"""Autologging for scikit-learn: the outermost ``fit`` logs params, score and model.

``enable()`` wraps ``fit`` where scikit-learn defines it (on the class that owns it,
so subclasses that inherit ``fit`` are covered once). A wrapped fit logs only when it
is the outermost one: the fits a ``Pipeline`` makes of its steps, or a search makes of
its candidates and its refit, run inside it and log nothing of their own. Worker
threads that would log to the same run as a fit in progress count as inside it too.

What the outermost fit logs, into the active run (or a run it starts, named after the
estimator's class, and ends after the fit):

- params: ``get_params(deep=True)``; scalars as they are, other objects by their type
  (``<StandardScaler>``), following the rules of ``@mltrack.track``;
- ``training_score``: ``estimator.score(X, y)`` when ``y`` was given;
- searches (``GridSearchCV``, ``RandomizedSearchCV``): ``best.<param>`` params and the
  ``best_cv_score`` metric;
- the fitted estimator as the model ``model``, with an input example of five rows and
  the signature inferred from it.

Logging never breaks the user's ``fit``: a failure is logged as a warning and the fit's
result is returned as usual.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mltrack.extend import Autologger

logger = logging.getLogger("mltrack.sklearn")

#: estimators that only reshape data: fitted alone they start no run and log nothing
#: (as in MLflow's autologging); inside a pipeline they are logged with it
_DATA_MODULES = ("sklearn.preprocessing", "sklearn.impute", "sklearn.feature_extraction", "sklearn.feature_selection")
_DATA_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)

EXAMPLE_ROWS = 5

_depth: ContextVar[int] = ContextVar("mltrack_sklearn_fit_depth", default=0)


class _FitsInProgress:
    """The runs that outermost fits are logging to right now, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: Counter[str] = Counter()

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return self._runs[run_id] > 0 if isinstance(run_id, str) else False

    def add(self, run_id: str) -> None:
        with self._lock:
            self._runs[run_id] += 1

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._runs[run_id] -= 1
            if self._runs[run_id] <= 0:
                del self._runs[run_id]


_in_progress = _FitsInProgress()


def _is_data_step(cls: type) -> bool:
    qualified = f"{cls.__module__}.{cls.__qualname__}"
    return cls.__module__.startswith(_DATA_MODULES) or qualified in _DATA_CLASSES


def _estimator_classes() -> set[type]:
    """Every scikit-learn estimator class (imports scikit-learn's estimator modules)."""
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline

    classes: set[type] = {Pipeline, FeatureUnion, GridSearchCV, RandomizedSearchCV}
    try:
        from sklearn.utils import all_estimators

        classes.update(estimator for _, estimator in all_estimators())
    except Exception as exc:  # an optional dependency of some module; patch what is importable
        logger.warning("mltrack: could not list every scikit-learn estimator: %s", exc)
    # plus anything already imported that all_estimators() skips
    pending: list[type] = [BaseEstimator]
    seen: set[type] = set()
    while pending:
        base = pending.pop()
        subclasses: list[type] = base.__subclasses__()
        for sub in subclasses:
            if sub in seen:
                continue
            seen.add(sub)
            if sub.__module__.startswith("sklearn."):
                classes.add(sub)
            pending.append(sub)
    return classes


def _fit_owners(classes: set[type]) -> set[type]:
    """The scikit-learn classes that define the ``fit`` the given classes use."""
    owners: set[type] = set()
    for cls in classes:
        owner = next((c for c in cls.__mro__ if "fit" in vars(c)), None)
        if owner is not None and owner.__module__.startswith("sklearn.") and inspect.isfunction(vars(owner)["fit"]):
            owners.add(owner)
    return owners


# The patches are process-wide, so their bookkeeping is too: any SklearnAutologger
# instance (the plugin manager may be rebuilt) can undo what another one did.
_originals: dict[type, Callable[..., Any]] = {}
_patch_lock = threading.Lock()


class SklearnAutologger(Autologger):
    """Logs scikit-learn ``fit`` calls; see the module docstring for what is logged."""

    name = "sklearn"

    @property
    def enabled(self) -> bool:
        return bool(_originals)

    def enable(self) -> None:
        with _patch_lock:
            if _originals:
                return
            for owner in _fit_owners(_estimator_classes()):
                original = vars(owner)["fit"]
                _originals[owner] = original
                setattr(owner, "fit", _logging_fit(original))  # noqa: B010 - patched per class

    def disable(self) -> None:
        with _patch_lock:
            for owner, original in _originals.items():
                setattr(owner, "fit", original)  # noqa: B010
            _originals.clear()


def _logging_fit(fit: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fit)
    def fit_and_log(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _depth.get() > 0:
            return fit(self, *args, **kwargs)  # inside an outer fit: it logs for us
        if _is_data_step(type(self)):
            with _inside_fit():
                return fit(self, *args, **kwargs)
        import mltrack

        run = mltrack.active_run()
        if run is not None and run.run_id in _in_progress:
            # a worker thread of a fit that is logging to this run (joblib's threads)
            return fit(self, *args, **kwargs)
        with _inside_fit():
            return _FitLog(self, run).around(fit, args, kwargs)

    return fit_and_log


@contextmanager
def _inside_fit() -> Iterator[None]:
    token = _depth.set(_depth.get() + 1)
    try:
        yield
    finally:
        _depth.reset(token)


class _FitLog:
    """One outermost fit: its run, what it logs before and after."""

    def __init__(self, estimator: Any, run: Any) -> None:
        self.estimator = estimator
        self.run = run
        self.started: Any = None

    def around(self, fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import mltrack

        if self.run is None:
            try:
                self.run = self.started = mltrack.start_run(type(self.estimator).__name__)
            except Exception as exc:
                _warn("could not start a run for the fit", exc)
                return fit(self.estimator, *args, **kwargs)
        run_id = self.run.run_id
        _in_progress.add(run_id)
        try:
            self._guarded("params", self.log_params)
            try:
                result = fit(self.estimator, *args, **kwargs)
            except BaseException as exc:
                self._end("FAILED" if not isinstance(exc, KeyboardInterrupt) else "KILLED", exc)
                raise
            X, y, sample_weight = _training_data(fit, self.estimator, args, kwargs)
            self._guarded("training_score", lambda: self.log_training_score(X, y, sample_weight))
            self._guarded("search results", self.log_search_results)
            self._guarded("model", lambda: self.log_model(X))
        finally:
            _in_progress.discard(run_id)
        self._end("FINISHED", None)
        return result

    def _guarded(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            _warn(f"could not log the {what} of {type(self.estimator).__name__}", exc)

    def _end(self, status: str, error: BaseException | None) -> None:
        if self.started is None:
            return
        import mltrack

        try:
            mltrack.end_run(status, run=self.started, error=error)
        except Exception as exc:
            _warn(f"could not end the run {self.started.run_id}", exc)

    # -- what is logged ------------------------------------------------------------

    def log_params(self) -> None:
        self._log_params(param_values(self.estimator.get_params(deep=True)))

    def _log_params(self, params: dict[str, Any]) -> None:
        import mltrack

        logged = self.run.params
        # params are immutable in MLflow: a second fit in one run keeps the first values
        conflicting = sorted(k for k, v in params.items() if k in logged and logged[k] != _as_text(v))
        if conflicting:
            logger.warning(
                "mltrack: run %s already has other values for %s; not logging this fit's values "
                "(start a run per fit to keep each fit's params)",
                self.run.run_id,
                ", ".join(conflicting[:5]) + (", ..." if len(conflicting) > 5 else ""),
            )
        mltrack.log_params({k: v for k, v in params.items() if k not in conflicting}, run_id=self.run.run_id)

    def log_training_score(self, X: Any, y: Any, sample_weight: Any) -> None:
        score = getattr(self.estimator, "score", None)
        if y is None or not callable(score):
            return
        import mltrack

        if sample_weight is not None and "sample_weight" in _parameters(score):
            value = score(X, y, sample_weight=sample_weight)
        else:
            value = score(X, y)
        mltrack.log_metrics({"training_score": float(value)}, run_id=self.run.run_id)

    def log_search_results(self) -> None:
        import mltrack

        best_params = getattr(self.estimator, "best_params_", None)
        if isinstance(best_params, dict):
            self._log_params(param_values({f"best.{k}": v for k, v in best_params.items()}))
        best_score = getattr(self.estimator, "best_score_", None)
        if best_score is not None:
            mltrack.log_metrics({"best_cv_score": float(best_score)}, run_id=self.run.run_id)

    def log_model(self, X: Any) -> None:
        import mltrack
        from mltrack_sklearn.flavour import is_sklearn_model

        if not is_sklearn_model(self.estimator) or getattr(self.estimator, "refit", True) is False:
            # nothing that could serve predictions (a search without refit has no best estimator)
            logger.info("mltrack: %s cannot predict; no model logged", type(self.estimator).__name__)
            return
        example = _head(X)
        try:
            mltrack.log_model(self.estimator, "model", flavour="sklearn", input_example=example, run_id=self.run.run_id)
        except mltrack.InvalidInputError as exc:
            if example is None or exc.field != "input_example":
                raise
            # an input the model cannot predict on its own (e.g. needs more rows): log without it
            mltrack.log_model(self.estimator, "model", flavour="sklearn", run_id=self.run.run_id)


def _warn(what: str, exc: BaseException) -> None:
    text = str(exc).splitlines()[0] if str(exc) else ""
    logger.warning("mltrack: autologging %s: %s%s", what, type(exc).__name__, f": {text}" if text else "")


def _parameters(func: Callable[..., Any]) -> Iterator[str]:
    try:
        return iter(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return iter(())


def _training_data(fit: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``X``, ``y`` and ``sample_weight`` of a ``fit`` call (None where not given)."""
    try:
        bound = inspect.signature(fit).bind_partial(estimator, *args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {}
    names = list(bound)
    X = bound.get("X", bound[names[1]] if len(names) > 1 else None)
    y = bound.get("y", bound.get("Y"))
    extra = bound.get("fit_params") or bound.get("params") or bound.get("kwargs") or {}
    sample_weight = bound.get("sample_weight", extra.get("sample_weight") if isinstance(extra, dict) else None)
    return X, y, sample_weight


def _head(X: Any) -> Any:
    """The first rows of ``X`` as an input example (None if it cannot be sliced)."""
    if X is None:
        return None
    try:
        if hasattr(X, "iloc"):
            return X.iloc[:EXAMPLE_ROWS]
        if isinstance(X, (list, tuple)) or hasattr(X, "shape"):
            return X[:EXAMPLE_ROWS]
    except Exception:
        return None
    return None


def param_values(params: dict[str, Any]) -> dict[str, Any]:
    """Params as MLTrack logs them: nested dicts flattened, scalars and lists of scalars
    kept, anything else described by its type; names MLflow refuses are left out."""
    from mltrack.extend import MAX_PARAM_VALUE_LENGTH, SCALAR_TYPES, check_key, describe_object, flatten

    values: dict[str, Any] = {}
    for key, value in flatten(params).items():
        try:
            check_key("param", key)
        except Exception:
            logger.debug("mltrack: param name %r is not one MLflow accepts; skipped", key)
            continue
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()  # numpy scalars
        if value is None or isinstance(value, SCALAR_TYPES):
            if isinstance(value, str) and len(value) > MAX_PARAM_VALUE_LENGTH:
                value = value[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
            values[key] = value
        elif isinstance(value, (list, tuple)) and all(v is None or isinstance(v, SCALAR_TYPES) for v in value):
            fits = len(_as_text(list(value))) <= MAX_PARAM_VALUE_LENGTH
            values[key] = list(value) if fits else describe_object(value)
        else:
            values[key] = describe_object(value)
    return values


def _as_text(value: Any) -> str:
    from mltrack.extend import param_to_string

    return param_to_string("value", value)
