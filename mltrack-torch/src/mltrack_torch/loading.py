"""``load_model``: a torch model onto a chosen device, from the registry, a URI or a directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltrack_torch.devices import MapLocation


def load_model(
    model: str | Path,
    version: int | str = "latest",
    *,
    map_location: MapLocation = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Load a torch model as a ``torch.nn.Module`` on ``map_location``.

    Args:
        model: a registered model name (with ``version``: an int, ``"latest"`` or an alias
            like ``"@champion"``), a model URI (``runs:/<run id>/model``, ``models:/...``), or a
            local MLflow model directory.
        map_location: the device to load onto ("cpu", "cuda", "cuda:1", a ``torch.device``);
            by default the device the model was saved from when this machine has it, else the CPU.
        factory: for the state-dict form only, builds the module to load the weights into
            instead of the factory saved with them.
    """
    from mltrack import InvalidInputError
    from mltrack.extend import flavour_of
    from mltrack_torch.flavour import TorchFlavour, TorchStateDictFlavour

    path = _model_dir(model, version)
    flavour = flavour_of(path)
    if isinstance(flavour, TorchStateDictFlavour):
        return flavour.load(path, map_location=map_location, factory=factory)
    if not isinstance(flavour, TorchFlavour):
        raise InvalidInputError(
            "model", str(model), f"is a {flavour.name!r} model, not a torch one", hint="load it with mltrack.load_model"
        )
    if factory is not None:
        raise InvalidInputError(
            "factory", factory, "is only used by models saved in the state-dict form (flavour 'torch-state-dict')"
        )
    return flavour.load(path, map_location=map_location)


def _model_dir(model: str | Path, version: int | str) -> Path:
    """The local directory of a model given by directory, URI or registered name."""
    local = Path(model)
    if (local / "MLmodel").is_file():
        return local
    if isinstance(model, str) and ":/" in model:
        import mlflow.artifacts

        from mltrack.extend import get_store

        return Path(mlflow.artifacts.download_artifacts(artifact_uri=model, tracking_uri=get_store().tracking_uri))
    # the registry's own resolution and download cache, as mltrack.load_model uses them
    from mltrack.extend import download_model_version, resolve_version

    return download_model_version(resolve_version(str(model), version))
