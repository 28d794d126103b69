"""Autologging: framework plugins register ``Autologger`` objects; ``mltrack.autolog()``
switches them on (all, or the named ones), ``@track(autolog=True)`` for one run only."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from mltrack.errors import PluginError
from mltrack.install_hint import install_hint


class Autologger(ABC):
    """Logs a framework's training automatically into the active MLTrack run."""

    #: unique name, e.g. "sklearn"; what ``mltrack.autolog("sklearn")`` selects
    name: str = ""

    @abstractmethod
    def enable(self) -> None:
        """Start logging (idempotent). Must import the framework lazily, here."""

    @abstractmethod
    def disable(self) -> None:
        """Stop logging and undo any patching (idempotent)."""


_enabled: set[str] = set()


def validate_autologger(obj: object) -> str:
    if not isinstance(obj, Autologger):
        raise PluginError(f"register_autologgers got {obj!r}, which is not a mltrack.Autologger instance")
    if not obj.name:
        raise PluginError(f"autologger {type(obj).__name__} has an empty `name`")
    return obj.name


def autologgers() -> dict[str, Autologger]:
    from mltrack.plugins import get_plugin_manager

    manager = get_plugin_manager()
    manager.set_validator("autologgers", validate_autologger)
    return {name: c.obj for name, c in manager.registry("autologgers").items()}


def autolog(*names: str, disable: bool = False) -> list[str]:
    """Switch on every installed autologger, or only ``names``; returns those switched.

    ``disable=True`` switches them off again.
    """
    from mltrack.plugins import get_plugin_manager

    available = autologgers()
    unknown = [n for n in names if n not in available]
    if unknown:
        installed = ", ".join(sorted(available)) or "(none)"
        raise PluginError(
            f"no autologger named {', '.join(map(repr, unknown))}; installed: {installed}",
            hint=f"install the framework's plugin, e.g. {install_hint('sklearn')}",
        )
    chosen = list(names) or sorted(available)
    manager = get_plugin_manager()
    for name in chosen:
        logger_obj: Any = manager.get("autologgers", name)
        if disable:
            logger_obj.disable()
            _enabled.discard(name)
        else:
            logger_obj.enable()
            _enabled.add(name)
    return chosen


def enabled() -> set[str]:
    return set(_enabled)
