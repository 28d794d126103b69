"""Numbers in the API's query strings, parsed strictly and bounded by what the store holds.

Neither Python nor FastAPI is strict enough here: ``int()`` reads other scripts' digits
("١٢" is 12) while ``str.isdigit()`` is true for "²", which ``int()`` refuses; FastAPI's
parsing accepts "1_000", " 12 " and numbers of any size. MLflow keeps ids, steps, times
and offsets in 64-bit columns: sqlite raises ``OverflowError`` for a larger value and
PostgreSQL refuses the query, which would surface as a 5xx. Every number a route takes is
therefore ASCII digits (with an optional minus sign) within its bounds, or a 400 naming it.
"""

from __future__ import annotations

import re

from mltrack import InvalidInputError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# [0-9], not \d: \d matches every script's digits.
_INTEGER = re.compile(r"-?[0-9]+")
# Twenty characters hold any int64; a longer number is refused before int() reads it.
_MAX_DIGITS = 20


def is_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def parse_int(name: str, text: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """``text`` as an int in ``[minimum, maximum]``, or ``InvalidInputError`` naming ``name``."""
    if not _INTEGER.fullmatch(text):
        raise InvalidInputError(
            name, text, "is not a whole number", hint=f"send {name} as ASCII digits, e.g. {name}={max(minimum, 1)}"
        )
    value = int(text) if len(text) <= _MAX_DIGITS else None
    if value is None or not minimum <= value <= maximum:
        raise InvalidInputError(
            name, text, f"must be between {minimum} and {maximum}", hint=f"send a {name} in that range"
        )
    return value


def optional_int(name: str, text: str | None, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int | None:
    """``parse_int`` for an optional parameter: None when it is absent or empty."""
    if text is None or text == "":
        return None
    return parse_int(name, text, minimum=minimum, maximum=maximum)


def int_or_default(
    name: str, text: str | None, default: int, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """``parse_int`` for a parameter with a default: absent or empty gives ``default``."""
    value = optional_int(name, text, minimum=minimum, maximum=maximum)
    return default if value is None else value


def is_id(text: str) -> bool:
    """True for a non-negative int64 written in ASCII digits (an experiment id)."""
    return len(text) <= 19 and text.isascii() and text.isdigit() and int(text) <= INT64_MAX
