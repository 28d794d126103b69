"""The ``Flavour`` contract: how a kind of model is saved, loaded and served.

Every model MLTrack writes is a valid MLflow model directory (an ``MLmodel`` file with
a ``python_function`` entry), so plain ``mlflow.pyfunc.load_model`` and ``mlflow models
serve`` accept it. A flavour backed by an MLflow built-in flavour reuses it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mltrack.errors import PluginError

# mlflow is imported inside functions: plugins subclass Flavour at `mltrack --help` (benchmarks/import_time.py).


class Predictor:
    """The uniform prediction interface over any flavour: ``predict(inputs, params=None)``."""

    def __init__(self, pyfunc_model: Any, flavour: str) -> None:
        self._model = pyfunc_model
        self.flavour = flavour

    @property
    def metadata(self) -> Any:
        return self._model.metadata

    @property
    def signature(self) -> Any:
        return self._model.metadata.get_input_schema() and self._model.metadata.signature

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        return self._model.predict(inputs, params=params)


class Flavour(ABC):
    """One kind of model. Subclass it and register an instance with ``register_flavours``."""

    #: unique name, e.g. "sklearn"; stored in the MLmodel metadata as ``mltrack_flavour``
    name: str = ""
    #: the MLflow flavour key this flavour writes (e.g. "sklearn"), used to recognise
    #: models logged by plain MLflow; None for pure-pyfunc flavours
    mlflow_flavour: str | None = None
    #: whether the model maps rows to rows: one output row per input row, each computed
    #: from its own input row alone. Then the server may concatenate the rows of concurrent
    #: requests into one ``predict`` call and split the output back (micro-batching). Leave
    #: False for models whose output depends on the whole input (e.g. a generic callable).
    batchable: bool = False

    @abstractmethod
    def can_handle(self, model: Any) -> bool:
        """Whether this flavour can save ``model``. Must not import heavy frameworks
        unless the model's own type shows they are already imported."""

    @abstractmethod
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
        """Write ``model`` as an MLflow model directory at ``path`` (which must not exist)."""

    @abstractmethod
    def load(self, path: Path) -> Any:
        """Load the native model object from an MLflow model directory."""

    def load_predictor(self, path: Path) -> Predictor:
        """A uniform predictor; by default MLflow's pyfunc loader of the directory."""
        import mlflow.pyfunc

        return Predictor(mlflow.pyfunc.load_model(str(path)), self.name)

    def load_fast_predictor(self, path: Path, mlmodel: dict[str, Any]) -> Any:
        """A predictor for serving that loads without importing MLflow, or None (the default:
        the server then uses ``load_predictor``).

        ``mlmodel`` is the directory's ``MLmodel`` file as a dict. Return None for any model
        the flavour cannot load exactly as MLflow's ``python_function`` loader would. The
        predictor's ``predict(inputs, params=None)`` gets a DataFrame whose columns the server
        has already checked against the signature and built with its types (only offered for
        signatures of named or positional scalar columns, or none), and must return what
        MLflow's pyfunc ``predict`` would for it.
        """
        return None

    @abstractmethod
    def requirements(self, model: Any) -> list[str]:
        """pip requirements needed to load the model (the framework, pinned)."""

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        """Output used to infer a signature from an input example (None: inputs only)."""
        predict = getattr(model, "predict", None)
        if callable(predict):
            return predict(input_example)
        if callable(model):
            return model(input_example)
        return None


def validate_flavour(obj: object) -> str:
    """Registry validator: flavours are ``Flavour`` instances with a name."""
    if not isinstance(obj, Flavour):
        raise PluginError(f"register_flavours got {obj!r}, which is not a mltrack.Flavour instance")
    if not obj.name or not isinstance(obj.name, str):
        raise PluginError(f"flavour {type(obj).__name__} has an empty `name`")
    return obj.name
