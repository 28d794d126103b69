"""The ``torch`` and ``torch-state-dict`` flavours.

``torch`` (the default for any ``torch.nn.Module``) saves the whole module with MLflow's
``pytorch`` flavour, pickled (``serialization_format="pickle"``): it needs no input example,
loads onto any device, and plain ``mlflow.pyfunc.load_model`` serves it. The module's class
is pickled by reference, so loading needs the code that defines it.

``torch-state-dict`` saves only the weights plus a factory that builds the module; see
``mltrack_torch.state_dict``. Choose it with ``mltrack.log_model(StateDict(net, factory=...))``
or ``flavour="torch-state-dict"``.

Both write the module's tensors from the CPU (a GPU-trained model loads on a CPU-only
machine) and record the device it came from as the ``torch_device`` metadata. ``load``
takes ``map_location``: by default the recorded device when this machine has it, else the CPU.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltrack import InvalidInputError, MLTrackError
from mltrack.extend import Flavour, Predictor
from mltrack_torch.devices import (
    DEVICE_METADATA_KEY,
    MapLocation,
    cpu_copy,
    device_of,
    resolve_map_location,
    unwrap,
)
from mltrack_torch.mlflow_pytorch import mlflow_pytorch
from mltrack_torch.state_dict import STATE_DICT_ARTIFACT, STATE_DICT_FILE, StateDict, state_dict_python_model


def is_torch_module(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def torch_requirements() -> list[str]:
    """The pip requirements to load a saved module: torch pinned to its public version (a local
    build tag such as ``+cpu`` or ``+cu121`` is dropped, so the pin installs from PyPI) and the
    cloudpickle that pickled it."""
    import cloudpickle
    import torch

    public = str(torch.__version__).split("+", 1)[0]
    return [f"torch=={public}", f"cloudpickle=={cloudpickle.__version__}"]


def predict_module(model: Any, inputs: Any) -> Any:
    """Run a module (or a ``StateDict``'s module) on a DataFrame or numpy array, as MLflow's
    pytorch flavour serves it: in eval mode, under ``no_grad``, on the module's device; returns
    a numpy array. The module's train/eval mode is restored afterwards."""
    import numpy as np
    import pandas as pd
    import torch

    module = unwrap(model.module if isinstance(model, StateDict) else model)
    if isinstance(inputs, pd.DataFrame):
        array = inputs.to_numpy(dtype=np.float32)
    elif isinstance(inputs, np.ndarray):
        array = inputs
    else:
        raise TypeError(
            f"a torch model takes a pandas DataFrame or a numpy array, not {type(inputs).__name__} "
            "(convert a tensor with .cpu().numpy())"
        )
    if not array.flags.writeable:
        array = array.copy()  # torch.from_numpy warns on read-only memory (pandas' copy-on-write views)
    was_training = module.training
    _set_training(module, False)
    try:
        with torch.no_grad():
            output = module(torch.from_numpy(array).to(device_of(module)))
    finally:
        _set_training(module, was_training)
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model returned {type(output).__name__}; a torch flavour serves one output tensor")
    return output.detach().to("cpu").numpy()


def _set_training(module: Any, mode: bool) -> None:
    try:
        module.train(mode)
    except NotImplementedError:  # a torch.export module has no train/eval switch
        pass


def _metadata(path: Path) -> tuple[Any, dict[str, Any]]:
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    return meta, dict(meta.metadata or {})


class TorchFlavour(Flavour):
    """A whole ``torch.nn.Module``, saved with MLflow's ``pytorch`` flavour (pickle format)."""

    name = "torch"
    mlflow_flavour = "pytorch"
    batchable = True

    def can_handle(self, model: Any) -> bool:
        return is_torch_module(model)

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
        module = unwrap(model)
        mlflow_pytorch().save_model(
            cpu_copy(module),
            str(path),
            signature=signature,
            input_example=input_example,
            # given, MLflow need not infer them (which loads the model again in a subprocess)
            pip_requirements=pip_requirements if pip_requirements is not None else torch_requirements(),
            metadata={**(metadata or {}), DEVICE_METADATA_KEY: str(device_of(module))},
            # pt2 (MLflow's default) needs an input example and pins the weights to one device
            serialization_format="pickle",
        )

    def load(self, path: Path, *, map_location: MapLocation = None) -> Any:
        """The saved module on ``map_location`` (default: the device it was saved from when
        this machine has it, else the CPU), in eval mode."""
        meta, metadata = _metadata(path)
        device = resolve_map_location(map_location, metadata.get(DEVICE_METADATA_KEY))
        data = Path(path) / meta.flavors.get("pytorch", {}).get("model_data", "data")
        if (data / "model.pt2").is_file():
            # written by plain MLflow with torch.export: its weights cannot change device
            module = mlflow_pytorch().load_model(str(path))
            if device_of(module).type != device.type:
                raise MLTrackError(
                    f"the model at {path} was exported (pt2) with its weights on {device_of(module)}; "
                    f"it cannot be loaded onto {device}",
                    hint=f'load it with map_location="{device_of(module).type}"',
                )
            return module
        module = mlflow_pytorch().load_model(str(path), map_location=device, weights_only=False)
        return module.eval()

    def load_predictor(self, path: Path) -> Predictor:
        mlflow_pytorch()  # MLflow's pyfunc loader would import it, with its logging side effect
        return super().load_predictor(path)

    def requirements(self, model: Any) -> list[str]:
        return torch_requirements()

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        return predict_module(model, input_example)


class TorchStateDictFlavour(Flavour):
    """A module's state dict and the factory that rebuilds it (see ``mltrack_torch.state_dict``)."""

    name = "torch-state-dict"
    mlflow_flavour = None
    batchable = True

    def can_handle(self, model: Any) -> bool:
        return isinstance(model, StateDict) or is_torch_module(model)

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
        import torch

        spec = model if isinstance(model, StateDict) else StateDict(model)
        module = unwrap(spec.module)
        factory = spec.resolved_factory()
        check_factory(factory, module)
        weights = {
            key: value.detach().to("cpu") if isinstance(value, torch.Tensor) else value
            for key, value in module.state_dict().items()
        }
        with tempfile.TemporaryDirectory(prefix="mltrack-torch-") as tmp:
            weights_file = Path(tmp) / STATE_DICT_FILE
            torch.save(weights, weights_file)
            mlflow.pyfunc.save_model(
                str(path),
                python_model=state_dict_python_model(factory),
                artifacts={STATE_DICT_ARTIFACT: str(weights_file)},
                signature=signature,
                input_example=input_example,
                pip_requirements=pip_requirements if pip_requirements is not None else torch_requirements(),
                metadata={**(metadata or {}), DEVICE_METADATA_KEY: str(device_of(module))},
                # declared so a loader may choose the device: load_model(..., model_config={"device": ...})
                model_config={"device": None},
            )

    def load(self, path: Path, *, map_location: MapLocation = None, factory: Callable[[], Any] | None = None) -> Any:
        """The module rebuilt on ``map_location`` (default as for ``torch``), in eval mode.

        ``factory`` replaces the saved one (when the module's code has moved or changed).
        """
        import torch

        meta, metadata = _metadata(path)
        device = resolve_map_location(map_location, metadata.get(DEVICE_METADATA_KEY))
        if factory is None:
            import mlflow.pyfunc

            loaded = mlflow.pyfunc.load_model(str(path), model_config={"device": str(device)})
            return loaded.unwrap_python_model().model
        artifacts = meta.flavors.get("python_function", {}).get("artifacts", {})
        relative = artifacts.get(STATE_DICT_ARTIFACT, {}).get("path", f"artifacts/{STATE_DICT_FILE}")
        weights = torch.load(Path(path) / relative, map_location="cpu", weights_only=True)
        module = factory()
        try:
            module.load_state_dict(weights)
        except RuntimeError as exc:
            raise InvalidInputError(
                "factory", factory, f"builds a module the saved weights do not fit: {exc}".splitlines()[0]
            ) from None
        return module.to(device).eval()

    def requirements(self, model: Any) -> list[str]:
        return torch_requirements()

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        return predict_module(model, input_example)


def check_factory(factory: Callable[[], Any], module: Any) -> None:
    """Refuse a factory whose module the weights of ``module`` would not fit, at save time
    rather than at load time. The probe is built on the ``meta`` device (no memory) when the
    factory allows it."""
    import torch

    hint = "pass mltrack_torch.StateDict(model, factory=...) with a factory that builds this architecture"
    try:
        with torch.device("meta"):
            probe = factory()
    except Exception:
        try:
            probe = factory()
        except Exception as exc:
            raise InvalidInputError("factory", factory, f"could not build a module: {exc}", hint=hint) from None
    if not isinstance(probe, torch.nn.Module):
        raise InvalidInputError("factory", factory, f"returned {type(probe).__name__}, not a torch.nn.Module")
    expected = _shapes(module)
    built = _shapes(probe)
    if expected == built:
        return
    missing = sorted(set(expected) - set(built))
    unexpected = sorted(set(built) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(built) if expected[k] != built[k])
    problems = [
        f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
        if keys
    ]
    raise InvalidInputError(
        "factory", factory, f"builds a module the weights do not fit ({'; '.join(problems)})", hint=hint
    )


def _shapes(module: Any) -> dict[str, tuple[int, ...]]:
    import torch

    return {k: tuple(v.shape) for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
