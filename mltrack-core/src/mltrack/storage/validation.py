"""Validation of logging-call input, done at the call so bad data is never queued.

The rules are MLflow's own (``mlflow/utils/validation.py``), plus what a store refuses
that MLflow's validators let through, for every store a team may use: sqlite, an
``mlflow server`` on PostgreSQL, and the server's REST protocol. Data accepted on one
store is therefore accepted on all of them. The rules are restated here rather than
imported because ``import mltrack`` and the logging hot path must not import MLflow;
``tests/core/test_validation_parity.py`` checks them against MLflow and both stores.

Already-valid keys are cached, so the hot path costs a set lookup.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import posixpath
import re
import sys
from typing import Any

from mltrack.errors import (
    InvalidInputError,
    InvalidKeyError,
    InvalidMetricValueError,
    InvalidParamValueError,
    InvalidTagValueError,
)

MAX_KEY_LENGTH = 250  # MLflow's MAX_ENTITY_KEY_LENGTH, and the VARCHAR(250) key columns
MAX_PARAM_VALUE_LENGTH = 6000  # MLflow's MAX_PARAM_VAL_LENGTH (the column holds 8000)
MAX_TAG_VALUE_LENGTH = 8000  # MLflow's MAX_TAG_VAL_LENGTH, and the VARCHAR(8000) column
MAX_RUN_NAME_LENGTH = 250  # runs.name is VARCHAR(250): PostgreSQL refuses more, sqlite does not
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
# Steps and timestamps are BIGINT columns and int64 protobuf fields.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# MLflow's name pattern (``validate_param_and_metric_name``), with ``re.match`` and ``$``
# as MLflow uses them: ``$`` also matches before one trailing newline, so MLflow (and so
# MLTrack) accepts "loss\n". Windows builds of MLflow refuse ':'.
_KEY_PATTERN = re.compile(r"^[/\w.\- ]*$" if sys.platform == "win32" else r"^[/\w.\- :]*$")
_KEY_CHARACTERS = (
    "letters, digits, '_', '-', '.', ' ' and '/'"
    if sys.platform == "win32"
    else "letters, digits, '_', '-', '.', ' ', ':' and '/'"
)
_KEY_HINT = f"use {_KEY_CHARACTERS} (at most {MAX_KEY_LENGTH} characters)"
_PATH_HINT = "write it as a plain relative path: no leading or doubled '/', no trailing '/', no '.' or '..' parts"

_valid_keys: dict[str, set[str]] = {"metric": set(), "param": set(), "tag": set()}

SCALAR_TYPES = (str, int, float, bool)
_MAX_NESTING = 64


class _Shown:
    """Stands in for a value in an error message when the value's repr cannot be made."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def refuse(
    error: type[InvalidInputError], field: str, value: Any, problem: str, *, hint: str | None = None
) -> InvalidInputError:
    """Build ``error`` for ``value``; safe for values whose repr raises.

    An int of more than 4300 digits or an object with a broken ``__repr__`` would make
    the error itself raise, letting a ValueError escape the logging call.
    """
    try:
        shown: Any = _Shown(repr(value))
    except Exception:
        shown = _Shown(f"<{type(value).__name__} that cannot be shown>")
    exc = error(field, shown, problem, hint=hint)
    exc.value = value
    return exc


def bad_path(name: str) -> str | None:
    """What a file-system view of ``name`` would turn it into, if it is not ``name``.

    MLflow's "bad path" rule (``path_not_unique``): names may become file paths, so a
    name must already be a normalised relative path. Returns None for a good name.
    """
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"):
        return norm
    return None


def check_key(kind: str, key: Any) -> str:
    """Return ``key`` if it is a valid metric/param/tag name, else raise ``InvalidKeyError``."""
    seen = _valid_keys[kind]
    # The type check comes first: a list or dict key must be refused, not raise TypeError.
    if type(key) is str and key in seen:
        return key
    field = f"{kind} name"
    if not isinstance(key, str):
        raise refuse(InvalidKeyError, field, key, f"must be a string, not {type(key).__name__}", hint=_KEY_HINT)
    if not key:
        raise refuse(InvalidKeyError, field, key, "must not be empty", hint=_KEY_HINT)
    if len(key) > MAX_KEY_LENGTH:
        raise refuse(InvalidKeyError, field, key, f"is {len(key)} characters long; MLflow allows {MAX_KEY_LENGTH}")
    if not _KEY_PATTERN.match(key):
        raise refuse(InvalidKeyError, field, key, "contains characters MLflow does not allow", hint=_KEY_HINT)
    norm = bad_path(key)
    if norm is not None:
        raise refuse(
            InvalidKeyError,
            field,
            key,
            f"would resolve to the path {norm!r}, and MLflow refuses names that change when read as paths",
            hint=_PATH_HINT,
        )
    if len(seen) < 100_000 and type(key) is str:
        seen.add(key)
    return key


def coerce_metric_value(key: str, value: Any, *, allow_nonfinite: bool) -> float:
    """Turn ``value`` into the float MLflow stores, or raise naming the metric.

    As MLflow's client does: numbers and bools become ``float(value)``; numpy arrays
    and tensors of one element give their ``.item()``. Unlike MLflow, strings are
    refused rather than parsed, and complex numbers rather than losing their imaginary
    part. Non-finite values (NaN, +/-inf) are an error unless ``allow_nonfinite``: then
    they are stored as MLflow stores them (NaN flagged, inf clamped to the largest float).
    """
    number = value if type(value) is float else _to_float(f"metric {key!r} value", value)
    if not allow_nonfinite and not math.isfinite(number):
        raise refuse(
            InvalidMetricValueError,
            f"metric {key!r} value",
            value,
            "is not finite",
            hint="check for a diverging loss, or set MLTRACK_ALLOW_NONFINITE_METRICS=1 to store it",
        )
    return number


def _to_float(field: str, value: Any) -> float:
    if isinstance(value, (str, bytes, bytearray)) or value is None:
        raise refuse(
            InvalidMetricValueError,
            field,
            value,
            "is not a number",
            hint="log numbers; strings belong in params or tags",
        )
    if not isinstance(value, numbers.Number) and hasattr(value, "item"):
        # numpy arrays and torch tensors: MLflow logs the one element they hold
        try:
            value = value.item()
        except Exception:
            raise refuse(
                InvalidMetricValueError,
                field,
                value,
                "is not a single number",
                hint="log one number per call, e.g. values.mean().item(), or log_metrics for several",
            ) from None
        if isinstance(value, (str, bytes)):
            raise refuse(InvalidMetricValueError, field, value, "is not a number")
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise refuse(
            InvalidMetricValueError, field, value, "is complex; MLflow stores real numbers", hint="log .real and .imag"
        )
    try:
        return float(value)
    except OverflowError:
        raise refuse(
            InvalidMetricValueError,
            field,
            value,
            "is too large for a 64-bit float (about ±1.8e308 at most)",
            hint="log its logarithm, or scale it down",
        ) from None
    except Exception:
        raise refuse(
            InvalidMetricValueError,
            field,
            value,
            f"of type {type(value).__name__} cannot be converted to a float",
            hint="log a Python number, a numpy scalar or a one-element array or tensor",
        ) from None


def _to_int64(field: str, value: Any, minimum: int, what: str) -> int:
    # Integral types only: a float step or timestamp passes MLflow's validator and sqlite,
    # but the server's int64 protobuf field refuses it (and so does it a bool). numpy
    # integers become plain ints (sqlite would otherwise store them as blobs).
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise refuse(
            InvalidMetricValueError,
            field,
            value,
            f"must be an integer{what}, not {type(value).__name__}",
            hint="pass an int (numpy integers are fine; call .item() on a tensor)",
        )
    number = operator.index(value)
    if not minimum <= number <= INT64_MAX:
        raise refuse(
            InvalidMetricValueError,
            field,
            value,
            f"is outside the range MLflow stores ({minimum} to {INT64_MAX}, a 64-bit integer)",
        )
    return number


def check_step(owner: str, step: Any) -> int:
    """Return ``step`` as an int in the int64 range (negative steps are allowed)."""
    if type(step) is int and INT64_MIN <= step <= INT64_MAX:
        return step
    return _to_int64(f"{owner} step", step, INT64_MIN, "")


def check_timestamp(owner: str, timestamp: Any) -> int:
    """Return ``timestamp`` (ms since the epoch) as a non-negative int64."""
    if type(timestamp) is int and 0 <= timestamp <= INT64_MAX:
        return timestamp
    return _to_int64(f"{owner} timestamp", timestamp, 0, " of milliseconds since the epoch, not negative")


def check_text(error: type[InvalidInputError], field: str, text: str, limit: int, *, hint: str | None = None) -> str:
    """Return ``text`` if every store can hold it exactly, else raise ``error``.

    ``limit`` is in characters (code points), as MLflow and the VARCHAR columns count.
    PostgreSQL refuses NUL characters (sqlite stores them), and no store can encode a
    lone surrogate (a str such as '\\ud800' that is not valid Unicode text).
    """
    if len(text) > limit:
        raise refuse(error, field, text, f"is {len(text)} characters long; MLflow stores at most {limit}", hint=hint)
    if "\x00" in text:
        raise refuse(
            error, field, text, "contains a NUL character ('\\x00'), which PostgreSQL cannot store", hint="remove it"
        )
    return check_utf8(error, field, text)


def check_utf8(error: type[InvalidInputError], field: str, text: str) -> str:
    """Return ``text`` if it is valid Unicode (encodable as UTF-8), else raise ``error``."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise refuse(
                error,
                field,
                text,
                f"contains a lone surrogate {text[exc.start]!r} at index {exc.start}, which is not valid text",
                hint="decode bytes with errors='replace', or drop the character",
            ) from None
    return text


def _scalar_text(error: type[InvalidInputError], field: str, value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an int of more than 4300 digits (sys.set_int_max_str_digits)
        raise refuse(error, field, value, "is too long to store", hint="log it with log_text") from None


def param_to_string(key: str, value: Any) -> str:
    """Render a param value as the string MLflow stores.

    Scalars (str, int, float, bool, None) are stored as ``str(value)``; lists and tuples
    of scalars as JSON. Anything else is refused: flatten dicts with ``log_params``
    and log objects as artifacts.
    """
    field = f"param {key!r} value"
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = _scalar_text(InvalidParamValueError, field, value)
    else:
        text = _render_other(field, value)
    return check_text(
        InvalidParamValueError, field, text, MAX_PARAM_VALUE_LENGTH, hint="log long values with log_text or log_dict"
    )


def _render_other(field: str, value: Any) -> str:
    unsupported = refuse(
        InvalidParamValueError,
        field,
        value,
        f"has unsupported type {type(value).__name__}",
        hint="log scalars or lists of scalars; pass nested dicts to log_params (they are "
        "flattened) and large objects with log_artifact/log_dict",
    )
    try:
        if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, SCALAR_TYPES) for v in value):
            return json.dumps(list(value))
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            return str(value.item())  # numpy scalars and 0-d tensors
    except Exception:
        # a hostile __getattr__, an unprintable element: refused like any other object
        raise unsupported from None
    raise unsupported


def tag_to_string(key: str, value: Any) -> str:
    """Render a tag value as the string MLflow stores (scalars only)."""
    field = f"tag {key!r} value"
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = _scalar_text(InvalidTagValueError, field, value)
    else:
        raise refuse(
            InvalidTagValueError, field, value, f"has unsupported type {type(value).__name__}", hint="tags are strings"
        )
    return check_text(InvalidTagValueError, field, text, MAX_TAG_VALUE_LENGTH)


def check_run_start(tags: Any, run_name: Any, description: Any) -> dict[str, str]:
    """Validate ``start_run``'s ``tags``, ``run_name`` and ``description``; return the tags as strings.

    The run name is stored in a VARCHAR(250) column (and as the ``mlflow.runName``
    tag); the description is the ``mlflow.note.content`` tag.
    """
    if tags is not None and not isinstance(tags, dict):
        raise refuse(InvalidInputError, "tags", tags, "must be a dict of name -> value")
    user_tags = {check_key("tag", k): tag_to_string(k, v) for k, v in (tags or {}).items()}
    if run_name is not None:
        if not isinstance(run_name, str):
            raise refuse(InvalidInputError, "run_name", run_name, "must be a string")
        check_text(InvalidInputError, "run_name", run_name, MAX_RUN_NAME_LENGTH)
        named = user_tags.get("mlflow.runName")
        if run_name and named is not None and named != run_name:
            raise refuse(
                InvalidTagValueError,
                "tag 'mlflow.runName' value",
                named,
                f"differs from run_name {run_name!r}",
                hint="pass the name once, as run_name",
            )
    if "mlflow.runName" in user_tags:
        check_text(InvalidTagValueError, "tag 'mlflow.runName' value", user_tags["mlflow.runName"], MAX_RUN_NAME_LENGTH)
    if description is not None:
        tag_to_string("description", description)
    return user_tags


def flatten(mapping: dict[str, Any], prefix: str = "", sep: str = ".", *, strict: bool = False) -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``.

    With ``strict`` (the logging calls), a key that is not a string, or two keys that
    flatten to the same name, raise ``InvalidKeyError`` instead of being converted or
    overwritten; without it (names taken from function arguments) keys become ``str(key)``.
    """
    flat: dict[str, Any] = {}
    _flatten_into(flat, mapping, prefix, sep, strict, 0)
    return flat


def _flatten_into(
    flat: dict[str, Any], mapping: dict[Any, Any], prefix: str, sep: str, strict: bool, depth: int
) -> None:
    if depth > _MAX_NESTING:
        raise refuse(
            InvalidInputError,
            "dict",
            prefix,
            f"is nested more than {_MAX_NESTING} levels deep (does it contain itself?)",
        )
    for key, value in mapping.items():
        if strict and not isinstance(key, str):
            raise refuse(
                InvalidKeyError, "name", key, f"must be a string, not {type(key).__name__}", hint=f"{_KEY_HINT}"
            )
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            _flatten_into(flat, value, name, sep, strict, depth + 1)
        elif strict and name in flat:
            raise refuse(InvalidKeyError, "name", name, "is given twice (once nested, once dotted)")
        else:
            flat[name] = value
