"""Hook implementations of the ``sklearn`` plugin (no framework import at module level)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mltrack


@mltrack.hookimpl
def register_flavours(register: Callable[[Any], None]) -> None:
    from mltrack_sklearn.flavour import SklearnFlavour

    register(SklearnFlavour())


@mltrack.hookimpl
def infer_flavour(model: Any) -> str | None:
    from mltrack_sklearn.flavour import is_sklearn_model

    return "sklearn" if is_sklearn_model(model) else None


@mltrack.hookimpl
def register_autologgers(register: Callable[[Any], None]) -> None:
    from mltrack_sklearn.autolog import SklearnAutologger

    register(SklearnAutologger())
