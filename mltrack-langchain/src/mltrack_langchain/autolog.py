"""``mltrack.autolog("langchain")``: trace every LangChain invocation made during a run."""

from __future__ import annotations

import sys

from mltrack.extend import Autologger


class LangChainAutologger(Autologger):
    """Switches :mod:`mltrack_langchain.tracing` on for every runnable invocation.

    Calls are recorded only while an MLTrack run is active; outside a run, chains run as
    if nothing were attached.
    """

    name = "langchain"

    def enable(self) -> None:
        from mltrack_langchain.tracing import enable_autolog

        enable_autolog()

    def disable(self) -> None:
        tracing = sys.modules.get("mltrack_langchain.tracing")
        if tracing is not None:  # never enabled: nothing to undo, and no LangChain import
            tracing.disable_autolog()
