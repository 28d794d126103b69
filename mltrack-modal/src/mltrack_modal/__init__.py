"""MLTrack plugin for Modal: deploy registered models as Modal web endpoints.

Importing this package imports neither the Modal SDK nor pydantic (``mltrack --help`` loads
every plugin package); they are imported when a deployment is planned, made, inspected or
removed, or when one of the names below is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mltrack_modal.config import ModalDeploymentConfig, ModalSettings
    from mltrack_modal.provider import ModalProvider

__version__ = "0.1.0"

__all__ = ["ModalDeploymentConfig", "ModalProvider", "ModalSettings", "__version__"]


def __getattr__(name: str) -> object:
    if name == "ModalProvider":  # the provider module imports MLTrack's deploy machinery: only on demand
        from mltrack_modal.provider import ModalProvider

        return ModalProvider
    if name in {"ModalDeploymentConfig", "ModalSettings"}:
        from mltrack_modal import config

        return getattr(config, name)
    raise AttributeError(f"module 'mltrack_modal' has no attribute {name!r}")
