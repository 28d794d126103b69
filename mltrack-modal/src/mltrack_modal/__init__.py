"""MLTrack plugin for Modal: deploy registered models as Modal web endpoints.

Importing this package does not import the Modal SDK; it is imported when a deployment is
planned, made, inspected or removed.
"""

from __future__ import annotations

from mltrack_modal.config import ModalDeploymentConfig, ModalSettings

__version__ = "0.1.0"

__all__ = ["ModalDeploymentConfig", "ModalProvider", "ModalSettings", "__version__"]


def __getattr__(name: str) -> object:
    if name == "ModalProvider":  # the provider module imports MLTrack's deploy machinery: only on demand
        from mltrack_modal.provider import ModalProvider

        return ModalProvider
    raise AttributeError(f"module 'mltrack_modal' has no attribute {name!r}")
