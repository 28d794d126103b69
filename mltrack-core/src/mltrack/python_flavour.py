"""The built-in ``python`` flavour: anything with ``predict``, a plain callable, or a
``PythonModel``-style class (``load_context`` / ``predict``).

It stays at ``mltrack.python_flavour`` rather than in ``mltrack/models/``: a model logged with it
holds a cloudpickled ``PredictWrapper`` whose functions refer to this module by name, so moving it
would make every model logged before the move fail to load.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from mltrack._version import __version__
from mltrack.models.flavours import Flavour

# mlflow and importlib.metadata are imported inside functions: the builtin plugin registers this flavour at `mltrack
# --help` (benchmarks/import_time.py).


def _accepts_params(func: Any) -> bool:
    try:
        return "params" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def _wrapper_class() -> type:
    import mlflow.pyfunc

    class PredictWrapper(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """Adapts an object with ``predict`` (or a callable) to MLflow's PythonModel."""

        # the wrapped object's input types are unknown here: the signature (inferred from the
        # input example) is what MLflow enforces, so skip its type-hint check and its warning
        _skip_type_hint_validation = True

        def __init__(self, obj: Any) -> None:
            self.obj = obj

        def load_context(self, context: Any) -> None:
            hook = getattr(self.obj, "load_context", None)
            if callable(hook):
                hook(context)

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            # unannotated on purpose: MLflow reads type hints here and warns on Any
            target = getattr(self.obj, "predict", None)
            if callable(target):
                if _accepts_params(target):
                    try:
                        return target(context, model_input, params=params)  # PythonModel-style
                    except TypeError:
                        return target(model_input, params=params)
                return target(model_input)
            return self.obj(model_input)

    return PredictWrapper


class PythonFlavour(Flavour):
    name = "python"
    mlflow_flavour = None

    def can_handle(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None)) or callable(model)

    def _python_model(self, model: Any) -> Any:
        import mlflow.pyfunc

        if isinstance(model, mlflow.pyfunc.PythonModel):
            return model
        return _wrapper_class()(model)

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
        import mlflow.pyfunc

        mlflow.pyfunc.save_model(
            str(path),
            python_model=self._python_model(model),
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            metadata=metadata,
        )

    def load(self, path: Path) -> Any:
        import mlflow.pyfunc

        python_model = mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
        return getattr(python_model, "obj", python_model)

    def requirements(self, model: Any) -> list[str]:
        from importlib import metadata

        requirements = [f"mltrack-core=={__version__}", f"mlflow=={metadata.version('mlflow')}"]
        module = type(model).__module__.split(".")[0]
        if module not in {"builtins", "__main__", "mltrack"}:
            try:
                requirements.append(f"{metadata.packages_distributions()[module][0]}")
            except (KeyError, IndexError):
                pass
        return requirements

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        if _accepts_params(getattr(model, "predict", None)):
            return None  # PythonModel-style: needs a context we do not have yet
        return super().predict_for_signature(model, input_example)
