"""The ``sklearn`` flavour: scikit-learn estimators and pipelines, saved with MLflow's own
``mlflow.sklearn`` flavour so that plain MLflow loads them without MLTrack installed."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mltrack.extend import Flavour

logger = logging.getLogger("mltrack.sklearn")

SKOPS = "skops"
CLOUDPICKLE = "cloudpickle"

_TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_sklearn_estimator(model: Any) -> bool:
    """Whether ``model`` is a scikit-learn estimator (its class derives from
    ``sklearn.base.BaseEstimator``), checked without importing scikit-learn."""
    if isinstance(model, type):
        return False
    return any(cls.__name__ == "BaseEstimator" and cls.__module__ == "sklearn.base" for cls in type(model).__mro__)


def is_sklearn_model(model: Any) -> bool:
    """Whether the ``sklearn`` flavour can save ``model``: a scikit-learn estimator (a
    third-party one too) with ``predict``, which MLflow's ``python_function`` serves.

    A transformer alone (no ``predict``) is not one: MLflow's sklearn loader cannot
    serve ``transform``. Inside a pipeline that ends in a predictor it is saved with it.
    """
    return is_sklearn_estimator(model) and callable(getattr(model, "predict", None))


def _estimators_in(model: Any) -> list[Any]:
    """``model`` and every estimator nested in it (pipeline steps, a search's estimator)."""
    found = [model]
    try:
        params = model.get_params(deep=True)
    except Exception:
        return found
    found += [value for value in params.values() if is_sklearn_estimator(value)]
    return found


def _pinned(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return f"{distribution}=={metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return None


def _third_party_requirements(model: Any) -> list[str]:
    """Pinned distributions of non-scikit-learn estimator classes inside ``model``
    (e.g. ``xgboost`` for an ``XGBClassifier`` pipeline step)."""
    from importlib import metadata

    modules = {type(est).__module__.split(".")[0] for est in _estimators_in(model)}
    modules -= {"sklearn", "builtins", "__main__"}
    if not modules:
        return []
    distributions = metadata.packages_distributions()
    requirements = []
    for module in sorted(modules):
        for distribution in distributions.get(module, [])[:1]:
            pinned = _pinned(distribution)
            if pinned:
                requirements.append(pinned)
    return requirements


class SklearnFlavour(Flavour):
    """scikit-learn estimators, pipelines and searches.

    Models are written by ``mlflow.sklearn.save_model`` in the safe ``skops`` format;
    a model skops cannot represent (a custom class or function, a lambda) falls back to
    ``cloudpickle`` with a warning. Either way the ``MLmodel`` names only MLflow's
    loader, so ``mlflow.pyfunc.load_model`` works where MLTrack is not installed.
    """

    name = "sklearn"
    mlflow_flavour = "sklearn"
    batchable = True

    def __init__(self, serialization_format: str = SKOPS) -> None:
        if serialization_format not in (SKOPS, CLOUDPICKLE):
            from mltrack import InvalidInputError

            raise InvalidInputError(
                "serialization_format", serialization_format, f"must be {SKOPS!r} or {CLOUDPICKLE!r}"
            )
        self.serialization_format = serialization_format

    def can_handle(self, model: Any) -> bool:
        return is_sklearn_model(model)

    def save(
        self,
        model: Any,
        path: Path,
        *,
        signature: Any = None,
        input_example: Any = None,
        pip_requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        import mlflow.sklearn

        options: dict[str, Any] = {
            "signature": signature,
            "input_example": input_example,
            "metadata": metadata,
        }
        if self.serialization_format == SKOPS and _skops_available():
            trusted, refused = _skops_trusted_types(model)
            if refused is None:
                mlflow.sklearn.save_model(
                    model,
                    str(path),
                    serialization_format=SKOPS,
                    skops_trusted_types=trusted or None,
                    pip_requirements=_with_serializer(pip_requirements, SKOPS),
                    **options,
                )
                return
            logger.warning(
                "mltrack: %s cannot be saved in the safe skops format (%s); saving it with cloudpickle, "
                "which runs code from the file when loaded: load it only from a store you trust",
                type(model).__name__,
                refused,
            )
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format=CLOUDPICKLE,
            pip_requirements=_with_serializer(pip_requirements, CLOUDPICKLE),
            **options,
        )

    def load(self, path: Path) -> Any:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(path))

    def load_fast_predictor(self, path: Path, mlmodel: dict[str, Any]) -> Any:
        """The model as MLflow's sklearn pyfunc loads it (skops or cloudpickle, with the
        trusted types the MLmodel names), without importing MLflow; None for anything else."""
        from mltrack_sklearn.fast import load_fast_predictor

        return load_fast_predictor(path, mlmodel)

    def requirements(self, model: Any) -> list[str]:
        requirements = [f"scikit-learn=={_sklearn_version()}"]
        serializer = SKOPS if self.serialization_format == SKOPS and _skops_available() else CLOUDPICKLE
        requirements += [r for r in (_pinned(serializer),) if r]
        return requirements + _third_party_requirements(model)

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        return model.predict(input_example)


def _sklearn_version() -> str:
    from importlib import metadata

    return metadata.version("scikit-learn")


def _skops_available() -> bool:
    from importlib.util import find_spec

    return find_spec("skops") is not None


def _skops_trusted_types(model: Any) -> tuple[list[str], str | None]:
    """The types skops must be told to trust to load ``model``, or why skops will not do.

    scikit-learn, NumPy and SciPy types are trusted (skops leaves some of scikit-learn's
    own out of its defaults, e.g. a search's CV splitter); anything else (a custom
    class, a lambda) is refused.
    """
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    except Exception as exc:
        return [], f"skops cannot serialize it: {_first_line(exc)}"
    refused = [name for name in untrusted if not name.startswith(_TRUSTED_MODULES)]
    if refused:
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        return [], f"it holds {shown}, which skops does not load safely"
    return untrusted, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _with_serializer(requirements: list[str] | None, serializer: str) -> list[str] | None:
    """``requirements`` plus the serializer the model file needs, unless already named."""
    if requirements is None:
        return None  # MLflow then writes its own defaults, which name the serializer
    named = {match.group(0).lower() for match in map(_NAME.match, requirements) if match}
    if serializer in named:
        return list(requirements)
    pinned = _pinned(serializer)
    return [*requirements, pinned] if pinned else list(requirements)
