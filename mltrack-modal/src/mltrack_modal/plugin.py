"""Hook implementations of the ``modal`` plugin (the Modal SDK is imported only when a deployment needs it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mltrack


@mltrack.hookimpl
def register_deploy_providers(register: Callable[[Any], None]) -> None:
    from mltrack_modal.provider import ModalProvider

    register(ModalProvider)
