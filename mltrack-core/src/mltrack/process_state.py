"""What MLTrack keeps for the life of a process, and the one place that resets and renews it.

Each module that holds process state (the settings, the plugin manager, the stores, the default
experiment, the runs and the writer) registers it here when it is imported, with how to forget it
(``reset``, for tests and for ``mltrack.testing.reset_state``) and what a forked child must renew
(``after_fork``: a lock another thread of the parent held at the fork stays held forever in the
child, a pooled database connection must not be shared, the writer thread does not exist there).

A fork runs the after-fork parts in two stages: first every ``early`` part (locks and caches),
then the rest (the runs, which use the settings, the plugins and the stores to give the child
a writer of its own). Only this module calls ``os.register_at_fork``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StatePart:
    """One module's process state: how to forget it and what a forked child renews."""

    name: str
    reset: Callable[[], None] | None = None
    after_fork: Callable[[], None] | None = None
    #: renewed in the first after-fork stage (locks and caches the later stage uses)
    early: bool = True
    before_fork: Callable[[], None] | None = None


_parts: dict[str, StatePart] = {}
_parts_lock = threading.Lock()


def register(
    name: str,
    *,
    reset: Callable[[], None] | None = None,
    after_fork: Callable[[], None] | None = None,
    early: bool = True,
    before_fork: Callable[[], None] | None = None,
) -> None:
    """Declare a module's process state (again under the same ``name`` replaces it)."""
    with _parts_lock:
        _parts[name] = StatePart(name, reset, after_fork, early, before_fork)


def parts() -> list[StatePart]:
    """The registered parts, in registration order."""
    with _parts_lock:
        return list(_parts.values())


def reset() -> None:
    """Forget every part's state: the next use re-reads configuration, rediscovers plugins and
    opens stores again. Runs still open are dropped, not ended (their store may be gone)."""
    for part in reversed(parts()):  # the runs and the writer first, the settings last
        if part.reset is not None:
            part.reset()


def reset_part(name: str) -> None:
    """Forget one part's state; a part not registered (its module not imported) has none."""
    with _parts_lock:
        part = _parts.get(name)
    if part is not None and part.reset is not None:
        part.reset()


def _before_fork() -> None:
    for part in list(_parts.values()):
        if part.before_fork is not None:
            part.before_fork()


def _after_fork_in_child() -> None:
    global _parts_lock
    _parts_lock = threading.Lock()
    registered = list(_parts.values())
    for stage in (True, False):
        for part in registered:
            if part.early is stage and part.after_fork is not None:
                part.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
