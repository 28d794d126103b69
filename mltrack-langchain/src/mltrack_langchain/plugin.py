"""The hooks MLTrack calls; LangChain is imported only where a hook needs it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import mltrack


@mltrack.hookimpl
def register_settings(register: Callable[[type[Any]], None]) -> None:
    from mltrack_langchain.settings import LangChainSettings

    register(LangChainSettings)


@mltrack.hookimpl
def register_flavours(register: Callable[[Any], None]) -> None:
    from mltrack_langchain.flavour import LangChainFlavour

    register(LangChainFlavour())


@mltrack.hookimpl
def infer_flavour(model: Any) -> str | None:
    # A runnable exists only if langchain_core is already imported; never import it to ask.
    if "langchain_core" not in sys.modules:
        return None
    from langchain_core.runnables import Runnable

    return "langchain" if isinstance(model, Runnable) else None


@mltrack.hookimpl
def register_autologgers(register: Callable[[Any], None]) -> None:
    from mltrack_langchain.autolog import LangChainAutologger

    register(LangChainAutologger())


@mltrack.hookimpl
def on_run_start(run: Any) -> None:
    tracing = sys.modules.get("mltrack_langchain.tracing")
    if tracing is not None:  # a resumed run records again
        tracing.reopen_traces(run.run_id)


@mltrack.hookimpl
def on_run_end(run: Any) -> None:
    # Traces exist only if tracing was imported (autolog or a handler was used).
    tracing = sys.modules.get("mltrack_langchain.tracing")
    if tracing is not None:
        tracing.write_traces_at_run_end(run.run_id)
