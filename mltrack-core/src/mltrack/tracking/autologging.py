"""Autologging: framework plugins register ``Autologger`` objects; ``mltrack.autolog()``
switches them on (all, or the named ones), ``@track(autolog=True)`` for one run only."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mltrack.errors import PluginError

# The plugin manager (entry points, pluggy) is imported inside functions: `mltrack.extend` loads this module at
# `mltrack --help` (benchmarks/import_time.py).


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
    from mltrack.plugins.manager import get_plugin_manager

    return dict(get_plugin_manager().objects("autologgers"))


def autolog(*names: str, disable: bool = False) -> list[str]:
    """Switch on every installed autologger, or only ``names``; returns those switched.

    ``disable=True`` switches them off again.
    """
    from mltrack.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    chosen = list(names) or sorted(autologgers())
    found = [manager.lookup("autologgers", name) for name in chosen]  # every name checked before any is switched
    for name, logger_obj in zip(chosen, found, strict=True):
        if disable:
            logger_obj.disable()
            _enabled.discard(name)
        else:
            logger_obj.enable()
            _enabled.add(name)
    return chosen


def enabled() -> set[str]:
    return set(_enabled)
