"""Fixtures of the system plugin's tests: the plugin switched on whatever the suite's default, and no
sampler left behind by a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


def sampler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mltrack-system-")]


@pytest.fixture(autouse=True)
def _system_plugin_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The rest of the suite may switch the plugin off (its runs must not gain system/ metrics);
    # these tests are about it, so they start from its installed default: on.
    for name in (
        "MLTRACK_PLUGINS__SYSTEM__ENABLED",
        "MLTRACK_PLUGINS__SYSTEM__INTERVAL_S",
        "MLTRACK_PLUGINS__SYSTEM__GROUPS",
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    from mltrack_system.sampler import REGISTRY

    REGISTRY.reset()
