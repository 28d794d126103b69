"""Model serving: one FastAPI app, run by ``mltrack serve``, SageMaker and Modal.

``load_served_model`` finds and loads a model, ``create_app`` wraps it in the ASGI app
(``create_lazy_app`` loads it after the app starts), and ``serve`` runs that app on
uvicorn in the foreground. Importing this package imports none of FastAPI, uvicorn or
MLflow; each name is imported from its module when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mltrack.serving.app import create_app, create_lazy_app
    from mltrack.serving.loading import ModelLocation, ServedModel, load_served_model, locate_model
    from mltrack.serving.protocol import RequestError
    from mltrack.serving.server import serve

_EXPORTS = {
    "ServedModel": "mltrack.serving.loading",
    "ModelLocation": "mltrack.serving.loading",
    "load_served_model": "mltrack.serving.loading",
    "locate_model": "mltrack.serving.loading",
    "create_app": "mltrack.serving.app",
    "create_lazy_app": "mltrack.serving.app",
    "RequestError": "mltrack.serving.protocol",
    "serve": "mltrack.serving.server",
}

__all__ = [
    "ModelLocation",
    "RequestError",
    "ServedModel",
    "create_app",
    "create_lazy_app",
    "load_served_model",
    "locate_model",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrack.serving' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
