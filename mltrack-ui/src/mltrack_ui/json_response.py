"""The API's JSON: strict, so every client's parser accepts it.

NaN and ±infinity are not JSON. Python writes them as bare ``NaN``/``Infinity`` tokens that
browsers' ``JSON.parse`` rejects, and Starlette's own response refuses them with an error (a
500). A metric, a plugin's panel or a deployment record may hold one, so every response
sends them as ``null`` -- the same rule as ``mltrack ... --json``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from mltrack.extend import finite_or_none


class StrictJSONResponse(JSONResponse):
    """A ``JSONResponse`` that sends NaN and ±infinity as ``null`` instead of failing."""

    def render(self, content: Any) -> bytes:
        try:
            return _dumps(content)
        except ValueError:
            # Only a response holding a non-finite number pays for the walk.
            return _dumps(finite_or_none(content))


def _dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
