"""Devices: where a model's tensors live, where a loaded model goes, and CPU copies for saving.

Models are always written with their tensors on the CPU, so a model trained on a GPU loads
on a machine without one. The device it was trained on is recorded in the model's metadata
(``torch_device``); loading puts the model back there when that device exists, else on the CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import torch

#: what ``map_location`` accepts: a device name ("cpu", "cuda", "cuda:1", "mps") or a ``torch.device``
MapLocation = Union[str, "torch.device", None]

#: the metadata key that records the device a model was saved from
DEVICE_METADATA_KEY = "torch_device"


def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for a module with neither)."""
    import torch

    for parameter in module.parameters():
        return parameter.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def is_available(device: torch.device) -> bool:
    """Whether tensors can be placed on ``device`` in this process."""
    import torch

    if device.type in {"cpu", "meta"}:
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index is None or device.index < torch.cuda.device_count())
    if device.type == "mps":
        return bool(torch.backends.mps.is_available())
    backend = getattr(torch, device.type, None)  # xpu, npu, ... expose is_available() the same way
    checker = getattr(backend, "is_available", None)
    return bool(checker()) if callable(checker) else False


def resolve_map_location(map_location: MapLocation, saved_on: str | None) -> torch.device:
    """The device a loaded model goes to.

    An explicit ``map_location`` wins (and must exist here); otherwise the device the model
    was saved from if this machine has it, else the CPU.
    """
    import torch

    from mltrack import InvalidInputError

    if map_location is not None:
        try:
            device = torch.device(map_location)
        except (RuntimeError, TypeError) as exc:
            raise InvalidInputError(
                "map_location", map_location, f"is not a torch device: {exc}", hint='use e.g. "cpu", "cuda" or "cuda:1"'
            ) from None
        if not is_available(device):
            raise InvalidInputError(
                "map_location",
                map_location,
                "is not available on this machine",
                hint='load onto "cpu", or check torch.cuda.is_available()',
            )
        return device
    if saved_on:
        try:
            device = torch.device(saved_on)
        except (RuntimeError, TypeError):
            return torch.device("cpu")
        if device.type != "meta" and is_available(device):
            return device
    return torch.device("cpu")


def cpu_copy(module: Any) -> Any:
    """``module`` with every tensor on the CPU: the module itself when it already is, else a
    copy made through the CPU (the GPU never holds two copies)."""
    import io

    import torch

    if all(t.device.type == "cpu" for t in _tensors(module)):
        return module
    buffer = io.BytesIO()
    if isinstance(module, torch.jit.ScriptModule):
        torch.jit.save(module, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location="cpu")  # type: ignore[no-untyped-call]
    from mltrack_torch.mlflow_pytorch import mlflow_pytorch

    # the pickle module MLflow saves with, so whatever MLflow can save survives the copy
    pickle_module = mlflow_pytorch().pickle_module
    torch.save(module, buffer, pickle_module=pickle_module)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", pickle_module=pickle_module, weights_only=False)


def _tensors(module: Any) -> Any:
    yield from module.parameters()
    yield from module.buffers()


def unwrap(module: Any) -> Any:
    """The user's module inside ``torch.compile`` and data-parallel wrappers."""
    for _ in range(8):  # wrappers nest at most a few levels deep
        inner = None
        if type(module).__name__ == "OptimizedModule":
            inner = getattr(module, "_orig_mod", None)
        elif type(module).__name__ in {"DistributedDataParallel", "DataParallel"}:
            inner = getattr(module, "module", None)
        if inner is None:
            return module
        module = inner
    return module
