"""The API's JSON: strict, so every client's parser accepts it.

NaN and ±infinity are not JSON. Python writes them as bare ``NaN``/``Infinity`` tokens that
browsers' ``JSON.parse`` rejects, and Starlette's own response refuses them with an error (a
500). A metric, a plugin's panel or a deployment record may hold one, so every response
sends them as ``null`` -- the same rule as ``mltrack ... --json``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import JSONResponse


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


class StrictJSONResponse(JSONResponse):
    """A ``JSONResponse`` that sends NaN and ±infinity as ``null`` instead of failing."""

    def render(self, content: Any) -> bytes:
        try:
            return _dumps(content)
        except ValueError:
            # Only a response holding a non-finite number pays for the walk.
            return _dumps(finite_or_null(content))


def _dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
