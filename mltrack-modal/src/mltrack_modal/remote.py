"""What runs inside the Modal container (and in-process under ``.local()``): the core serving app.

Kept apart from the app builder so that the container imports only MLTrack's serving code.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def serving_app(model_dir: str, *, model_name: str, model_version: int, max_batch_size: int, max_wait_ms: float) -> Any:
    """The core serving app (FastAPI) over the MLflow model directory ``model_dir``.

    The directory does not know its registry name; ``/metadata`` reports the registered
    name and version the deployment serves.
    """
    from mltrack.extend import create_app, load_served_model

    served = dataclasses.replace(load_served_model(model_dir), name=model_name, version=str(model_version))
    return create_app(served, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
