"""Serving a scikit-learn model without importing MLflow.

``mlflow.sklearn``'s pyfunc loader reads the model file (skops with the MLmodel's trusted
types, or cloudpickle) and predicts with ``model.predict(data)``; this does the same for
the models it can serve identically and declines (None) the rest, which then load through
MLflow: a pickle file, custom ``code`` paths, a ``pyfunc_predict_fn`` other than
``predict``, or ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` turned off.

Importing ``skops.io`` builds skops' default trusted types by importing every package of
scikit-learn (``sklearn.utils.all_estimators``); on the way, ``pkgutil`` imports
``sklearn.externals.array_api_compat.torch``, which imports PyTorch when it is installed
(about two seconds), although nothing under ``sklearn.externals`` is ever trusted.
``import_skops_io`` keeps that one vendored package out while skops is first imported, so
the trusted types come out the same (a test compares them) without PyTorch. Keeping a
module out can only make skops trust less, never more.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

SKOPS = "skops"
CLOUDPICKLE = "cloudpickle"
#: the vendored package that would import PyTorch while skops lists scikit-learn's estimators
_TORCH_COMPAT = "sklearn.externals.array_api_compat.torch"
_import_lock = threading.Lock()


def import_skops_io() -> Any:
    """``skops.io``, imported (the first time) without importing PyTorch on the way."""
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    with _import_lock:
        blocked = _TORCH_COMPAT not in sys.modules
        if blocked:
            sys.modules[_TORCH_COMPAT] = None  # type: ignore[assignment]  # pkgutil skips it (ImportError)
        try:
            import skops.io
        finally:
            if blocked and sys.modules.get(_TORCH_COMPAT, "") is None:
                del sys.modules[_TORCH_COMPAT]
    return skops.io


def _pickle_allowed() -> bool:
    """MLflow's ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` (default true), read as MLflow reads it."""
    value = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    return value is None or value.strip().lower() in ("true", "1")


class SklearnPredictor:
    """``predict(inputs, params=None)`` as MLflow's sklearn pyfunc answers it."""

    def __init__(self, model: Any, flavour: str = "sklearn") -> None:
        self.model = model
        self.flavour = flavour

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        # MLflow's sklearn wrapper ignores params (the server offers this predictor only to
        # models whose signature declares none)
        return self.model.predict(inputs)


def load_fast_predictor(path: Path, mlmodel: dict[str, Any]) -> SklearnPredictor | None:
    """The predictor for the model directory ``path`` whose MLmodel is ``mlmodel``, or None."""
    flavors = mlmodel.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    conf = flavors.get("sklearn")
    if not isinstance(conf, dict) or pyfunc.get("loader_module") != "mlflow.sklearn":
        return None
    if pyfunc.get("predict_fn", "predict") != "predict" or conf.get("code") or pyfunc.get("code"):
        return None
    serialization = conf.get("serialization_format")
    file = pyfunc.get("model_path")
    if serialization not in (SKOPS, CLOUDPICKLE) or not isinstance(file, str) or not _pickle_allowed():
        return None
    model_file = path / file
    if not model_file.is_file():
        return None
    if serialization == SKOPS:
        trusted = conf.get("skops_trusted_types")
        model = import_skops_io().load(str(model_file), trusted=trusted)
    else:
        import cloudpickle

        with model_file.open("rb") as f:
            model = cloudpickle.load(f)
    return SklearnPredictor(model)
