"""The state-dict form: a module's weights plus a factory that builds the module to load them into.

``StateDict(module, factory=...)`` is what you log to choose this form::

    mltrack.log_model(mltrack_torch.StateDict(net, factory=functools.partial(Net, hidden=64)), "model")

The weights are saved with ``torch.save(state_dict)`` and load with ``weights_only=True``
(no pickled code runs to read them). The factory, a class or function that takes no
arguments, is pickled by reference when it can be imported (``Net``, ``partial(Net, ...)``),
so loading needs the code that defines the module, as it does for the full form; when that
code has moved, load the weights into a new factory with
``mltrack_torch.load_model(..., factory=NewNet)``.

The MLflow ``python_function`` entry of such a model is a small ``PythonModel`` whose class
is pickled by value: plain MLflow loads and serves it without MLTrack installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: where the weights live inside the model directory's ``artifacts/``
STATE_DICT_ARTIFACT = "state_dict"
STATE_DICT_FILE = "state_dict.pt"


@dataclass(frozen=True)
class StateDict:
    """A module to save as its state dict, and how to build an empty one to load it into.

    Args:
        module: the trained ``torch.nn.Module``.
        factory: a callable taking no arguments that returns a module with the same
            structure; defaults to ``type(module)`` (for modules built without arguments).
    """

    module: torch.nn.Module
    factory: Callable[[], torch.nn.Module] | None = None

    def resolved_factory(self) -> Callable[[], Any]:
        return self.factory if self.factory is not None else type(self.module)


def state_dict_python_model(factory: Callable[[], Any]) -> Any:
    """A ``PythonModel`` that builds ``factory()`` and loads the saved weights into it.

    Its class is created in a function, so cloudpickle saves it by value: the
    model directory does not reference this package. The methods therefore import what
    they use themselves and call nothing else of this module.
    """
    import mlflow.pyfunc

    return _define_model_class(mlflow.pyfunc.PythonModel)(factory)


def _define_model_class(base: type) -> Any:
    class TorchStateDictModel(base):  # type: ignore[misc,valid-type]
        """Serves a torch module rebuilt from its factory and state dict."""

        # predict takes DataFrames and arrays, which no type hint MLflow validates states:
        # skip MLflow's type-hint wrapping (and its warning that hints are missing)
        _skip_type_hint_validation = True

        def __init__(self, factory: Callable[[], Any]) -> None:
            self.factory = factory
            # annotations in a function body are never evaluated: nothing here pickles `Any`
            self.model: Any = None
            self.device: Any = None

        def load_context(self, context: Any) -> None:
            import os

            import torch

            # the same device choice as MLflow's pytorch flavour: model_config, then the
            # MLFLOW_DEFAULT_PREDICTION_DEVICE variable, then the GPU if there is one
            config = getattr(context, "model_config", None) or {}
            device = config.get("device") or os.environ.get("MLFLOW_DEFAULT_PREDICTION_DEVICE")
            if not device:
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self.device = torch.device(device)
            weights = torch.load(context.artifacts["state_dict"], map_location="cpu", weights_only=True)
            model = self.factory()
            model.load_state_dict(weights)
            self.model = model.to(self.device).eval()

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            # unannotated on purpose: MLflow reads type hints here and warns on Any
            import numpy as np
            import pandas as pd
            import torch

            if isinstance(model_input, pd.DataFrame):
                array = model_input.to_numpy(dtype=np.float32)
            elif isinstance(model_input, np.ndarray):
                array = model_input
            else:
                raise TypeError("input must be a pandas DataFrame or a numpy array")
            if not array.flags.writeable:
                array = array.copy()  # torch.from_numpy warns on read-only memory
            with torch.no_grad():
                output = self.model(torch.from_numpy(array).to(self.device), **(params or {}))
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"the model returned {type(output).__name__}, not one tensor")
            result = output.detach().to("cpu").numpy()
            if isinstance(model_input, pd.DataFrame):
                return pd.DataFrame(result, index=model_input.index)
            return result

    return TorchStateDictModel
