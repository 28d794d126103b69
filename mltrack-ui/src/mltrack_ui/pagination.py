"""Opaque page tokens: an offset into the SQL result, or the MLflow server's own token."""

from __future__ import annotations

import base64
import json

from mltrack.errors import InvalidInputError


def offset_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def offset_from(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError("page_token", token, "is not a token this API returned") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInputError("page_token", token, "is not a token this API returned")
    return offset
