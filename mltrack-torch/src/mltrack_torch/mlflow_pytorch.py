"""Import ``mlflow.pytorch`` without its side effect on the process's logging.

Importing ``mlflow.pytorch`` imports ``mlflow.pytorch._lightning_autolog``, which runs
``logging.basicConfig(level=logging.ERROR)`` at module level (before it finds out that
PyTorch Lightning is missing). In a process that has not configured logging, that adds a
stderr handler to the root logger and raises its level to ERROR, silencing every library's
warnings from then on, MLTrack's included. Undo exactly that, and nothing the user set.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def mlflow_pytorch() -> ModuleType:
    """The ``mlflow.pytorch`` module, imported with the root logger left as it was."""
    module = sys.modules.get("mlflow.pytorch")
    if module is not None:
        return module
    with _lock:
        root = logging.getLogger()
        level, handlers = root.level, list(root.handlers)
        import mlflow.pytorch

        if root.level != level:
            root.setLevel(level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        return mlflow.pytorch
