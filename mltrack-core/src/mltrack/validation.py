"""Validation of logging-call input, done at the call so bad data is never queued.

The rules are MLflow's (so a value accepted here is accepted by the store), checked
with a cache of already-seen keys so the hot path costs a set lookup.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from mltrack.errors import (
    InvalidKeyError,
    InvalidMetricValueError,
    InvalidParamValueError,
    InvalidTagValueError,
)

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000

_KEY_PATTERN = re.compile(r"^[/\w.\- :]+$")
_KEY_HINT = "use letters, digits, '_', '-', '.', ' ', ':' and '/' (at most 250 characters)"

_valid_keys: dict[str, set[str]] = {"metric": set(), "param": set(), "tag": set()}

SCALAR_TYPES = (str, int, float, bool)


def check_key(kind: str, key: Any) -> str:
    """Return ``key`` if it is a valid metric/param/tag name, else raise ``InvalidKeyError``."""
    seen = _valid_keys[kind]
    if key in seen:
        return key  # type: ignore[no-any-return]
    field = f"{kind} name"
    if not isinstance(key, str):
        raise InvalidKeyError(field, key, f"must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKeyError(field, key, "must not be empty", hint=_KEY_HINT)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(field, key, f"is {len(key)} characters long", hint=_KEY_HINT)
    if not _KEY_PATTERN.match(key):
        raise InvalidKeyError(field, key, "contains characters MLflow does not allow", hint=_KEY_HINT)
    if key.startswith("/") or ".." in key.split("/") or key != key.strip():
        raise InvalidKeyError(field, key, "must be a relative name without '..' or surrounding spaces", hint=_KEY_HINT)
    if len(seen) < 100_000:
        seen.add(key)
    return key


def coerce_metric_value(key: str, value: Any, *, allow_nonfinite: bool) -> float:
    """Turn ``value`` into a float, or raise naming the metric.

    Non-finite values (NaN, +/-inf) are an error unless ``allow_nonfinite``: then they
    are stored as MLflow stores them (NaN flagged, inf clamped to the largest float).
    """
    if type(value) is float:
        number = value
    elif isinstance(value, (str, bytes)) or value is None:
        raise InvalidMetricValueError(
            f"metric {key!r} value", value, "is not a number", hint="log numbers; strings belong in params or tags"
        )
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidMetricValueError(
                f"metric {key!r} value",
                value,
                f"of type {type(value).__name__} cannot be converted to a float",
                hint="log a Python number, a numpy scalar or a 0-d tensor (call .item())",
            ) from None
    if not allow_nonfinite and not math.isfinite(number):
        raise InvalidMetricValueError(
            f"metric {key!r} value",
            value,
            "is not finite",
            hint="check for a diverging loss, or set MLTRACK_ALLOW_NONFINITE_METRICS=1 to store it",
        )
    return number


def check_step(key: str, step: Any) -> int:
    if type(step) is int:
        return step
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise InvalidMetricValueError(f"metric {key!r} step", step, "must be an integer")
    return int(step.__index__())


def check_timestamp(key: str, timestamp: Any) -> int:
    if type(timestamp) is int and timestamp >= 0:
        return timestamp
    raise InvalidMetricValueError(
        f"metric {key!r} timestamp", timestamp, "must be a non-negative int of milliseconds since the epoch"
    )


def param_to_string(key: str, value: Any) -> str:
    """Render a param value as the string MLflow stores.

    Scalars (str, int, float, bool, None) are stored as ``str(value)``; lists and tuples
    of scalars as JSON. Anything else is refused: flatten dicts with ``log_params``
    and log objects as artifacts.
    """
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = str(value)
    elif isinstance(value, (list, tuple)) and all(v is None or isinstance(v, SCALAR_TYPES) for v in value):
        text = json.dumps(list(value))
    elif hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        text = str(value.item())  # numpy scalars and 0-d tensors
    else:
        raise InvalidParamValueError(
            f"param {key!r} value",
            value,
            f"has unsupported type {type(value).__name__}",
            hint="log scalars or lists of scalars; pass nested dicts to log_params (they are "
            "flattened) and large objects with log_artifact/log_dict",
        )
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidParamValueError(
            f"param {key!r} value",
            text,
            f"is {len(text)} characters long; MLflow stores at most {MAX_PARAM_VALUE_LENGTH}",
            hint="log long values with log_text or log_dict",
        )
    return text


def tag_to_string(key: str, value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float)):
        text = str(value)
    else:
        raise InvalidTagValueError(
            f"tag {key!r} value", value, f"has unsupported type {type(value).__name__}", hint="tags are strings"
        )
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidTagValueError(
            f"tag {key!r} value",
            text,
            f"is {len(text)} characters long; MLflow stores at most {MAX_TAG_VALUE_LENGTH}",
        )
    return text


def flatten(mapping: dict[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = value
    return flat
