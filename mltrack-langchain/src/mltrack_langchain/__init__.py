"""MLTrack plugin for LangChain: the ``langchain`` model flavour and call tracing.

Importing this package imports no LangChain; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "LangChainFlavour": "mltrack_langchain.flavour",
    "LangChainPredictor": "mltrack_langchain.flavour",
    "LangChainAutologger": "mltrack_langchain.autolog",
    "LangChainSettings": "mltrack_langchain.settings",
    "MLTrackCallbackHandler": "mltrack_langchain.tracing",
    "flush_traces": "mltrack_langchain.tracing",
    "TRACE_ARTIFACT": "mltrack_langchain.tracing",
}

__all__ = [
    "TRACE_ARTIFACT",
    "LangChainAutologger",
    "LangChainFlavour",
    "LangChainPredictor",
    "LangChainSettings",
    "MLTrackCallbackHandler",
    "__version__",
    "flush_traces",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrack_langchain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from mltrack_langchain.autolog import LangChainAutologger
    from mltrack_langchain.flavour import LangChainFlavour, LangChainPredictor
    from mltrack_langchain.settings import LangChainSettings
    from mltrack_langchain.tracing import TRACE_ARTIFACT, MLTrackCallbackHandler, flush_traces
