"""Opaque page tokens: an offset into the SQL result, or the MLflow server's own token."""

from __future__ import annotations

import base64
import json
from typing import Any

from mltrack import InvalidInputError
from mltrack_ui.query_params import INT64_MAX

_NOT_OURS = "is not a token this API returned"
_HINT = "drop page_token to start from the first page"


def offset_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decoded_offset(token: str) -> Any:
    # MLflow's server writes the same {"offset": n} document, in standard base64.
    raw = base64.urlsafe_b64decode(token.translate(str.maketrans("+/", "-_")).encode())
    return json.loads(raw)["offset"]


def _checked(token: str, offset: Any) -> int:
    # bool is an int to Python; an offset past int64 is refused by sqlite and PostgreSQL.
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT64_MAX:
        raise InvalidInputError("page_token", token, _NOT_OURS, hint=_HINT)
    return offset


def offset_from(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = _decoded_offset(token)
    except (ValueError, KeyError, TypeError):
        raise InvalidInputError("page_token", token, _NOT_OURS, hint=_HINT) from None
    return _checked(token, offset)


def check_server_token(token: str | None) -> None:
    """Refuse an MLflow server token whose offset no database can use.

    The server would pass it to its database and answer 500; a token in another format is
    left for the server to judge.
    """
    if not token:
        return
    try:
        offset = _decoded_offset(token)
    except (ValueError, KeyError, TypeError):
        return
    _checked(token, offset)
