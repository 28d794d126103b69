"""The logging calls: validate at the call, then enqueue for the background writer.

Nothing is queued unless every item of the call is valid, so a rejected call never
leaves half its data behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mltrack import runs
from mltrack.errors import InvalidInputError, InvalidParamValueError
from mltrack.validation import (
    _valid_keys,
    check_key,
    check_step,
    check_timestamp,
    coerce_metric_value,
    flatten,
    param_to_string,
    tag_to_string,
)
from mltrack.writer import METRIC, PARAM, TAG

_metric_keys = _valid_keys["metric"]
_isfinite = math.isfinite
_time_ns = time.time_ns


def _nonfinite_allowed() -> bool:
    # Read on each call (only non-float or non-finite values get here), so configure()
    # takes effect at once.
    from mltrack.config import get_settings

    return get_settings().allow_nonfinite_metrics


def reset_cached_settings() -> None:
    """Kept for callers that reset MLTrack state; nothing is cached any more."""


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None, *, run_id: str | None = None
) -> None:
    """Log one metric point (non-blocking). ``timestamp`` is in ms; ``step`` defaults to 0."""
    run = runs.current_run(run_id)
    if key not in _metric_keys:
        check_key("metric", key)
    if type(value) is not float or not _isfinite(value):
        value = coerce_metric_value(key, value, allow_nonfinite=_nonfinite_allowed())
    if step is None:
        step = 0
    elif type(step) is not int:
        step = check_step(key, step)
    if timestamp is None:
        timestamp = _time_ns() // 1_000_000
    elif type(timestamp) is not int or timestamp < 0:
        timestamp = check_timestamp(key, timestamp)
    spool = run.spool
    slot = -1 if spool is None else spool.append_metric(key, value, timestamp, step)
    runs.get_writer().put((METRIC, run.run_id, key, value, timestamp, step, slot))


def log_metrics(
    metrics: dict[str, Any], step: int | None = None, timestamp: int | None = None, *, run_id: str | None = None
) -> None:
    """Log several metrics at one step; nested dicts are flattened to dotted names."""
    run = runs.current_run(run_id)
    if not isinstance(metrics, dict):
        raise InvalidInputError("metrics", metrics, "must be a dict of name -> number")
    allow = _nonfinite_allowed()
    flat = flatten(metrics)
    checked = [(check_key("metric", k), coerce_metric_value(k, v, allow_nonfinite=allow)) for k, v in flat.items()]
    step = 0 if step is None else check_step("metrics", step)
    timestamp = _time_ns() // 1_000_000 if timestamp is None else check_timestamp("metrics", timestamp)
    put = runs.get_writer().put
    spool = run.spool
    for key, value in checked:
        slot = -1 if spool is None else spool.append_metric(key, value, timestamp, step)
        put((METRIC, run.run_id, key, value, timestamp, step, slot))


def _check_param(run: runs.ActiveRun, key: Any, value: Any) -> tuple[str, str]:
    check_key("param", key)
    text = param_to_string(key, value)
    previous = run.params.get(key)
    if previous is not None and previous != text:
        raise InvalidParamValueError(
            f"param {key!r} value",
            value,
            f"conflicts with the value {previous!r} already logged in this run",
            hint="MLflow params are immutable: use a new param name, a tag, or a new run",
        )
    return key, text


def log_param(key: str, value: Any, *, run_id: str | None = None) -> str:
    """Log a param (non-blocking); returns the string stored."""
    run = runs.current_run(run_id)
    key, text = _check_param(run, key, value)
    if run.params.get(key) != text:
        run.params[key] = text
        _spool_record(run, "p", key, text)
        runs.get_writer().put((PARAM, run.run_id, key, text))
    return text


def _spool_record(run: runs.ActiveRun, kind: str, key: str, text: str) -> None:
    if run.spool is not None and not run.spool.closed:
        run.spool.append_record({kind: [key, text]})


def log_params(params: dict[str, Any], *, run_id: str | None = None) -> None:
    """Log several params; nested dicts are flattened to dotted names (``opt.lr``)."""
    run = runs.current_run(run_id)
    if not isinstance(params, dict):
        raise InvalidInputError("params", params, "must be a dict of name -> value")
    checked = [_check_param(run, k, v) for k, v in flatten(params).items()]
    put = runs.get_writer().put
    for key, text in checked:
        if run.params.get(key) != text:
            run.params[key] = text
            _spool_record(run, "p", key, text)
            put((PARAM, run.run_id, key, text))


def set_tag(key: str, value: Any, *, run_id: str | None = None) -> None:
    """Set a tag (non-blocking); a later value replaces an earlier one."""
    run = runs.current_run(run_id)
    text = tag_to_string(check_key("tag", key), value)
    _spool_record(run, "t", key, text)
    runs.get_writer().put((TAG, run.run_id, key, text))


def set_tags(tags: dict[str, Any], *, run_id: str | None = None) -> None:
    """Set several tags at once."""
    run = runs.current_run(run_id)
    if not isinstance(tags, dict):
        raise InvalidInputError("tags", tags, "must be a dict of name -> value")
    checked = [(check_key("tag", k), tag_to_string(k, v)) for k, v in tags.items()]
    put = runs.get_writer().put
    for key, text in checked:
        _spool_record(run, "t", key, text)
        put((TAG, run.run_id, key, text))


def _check_artifact_path(field: str, artifact_path: str | None) -> None:
    if artifact_path is None:
        return
    if not isinstance(artifact_path, str) or artifact_path.startswith("/") or ".." in Path(artifact_path).parts:
        raise InvalidInputError(field, artifact_path, "must be a relative path inside the run's artifacts")


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> None:
    """Upload a file into the run's artifacts (synchronous)."""
    run = runs.current_run(run_id)
    path = Path(local_path)
    if not path.is_file():
        raise InvalidInputError(
            "local_path", str(local_path), "is not an existing file", hint="use log_artifacts for a directory"
        )
    _check_artifact_path("artifact_path", artifact_path)
    from mltrack.experiments import store_errors

    with store_errors(run.store):
        run.store.client.log_artifact(run.run_id, str(path), artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> None:
    """Upload a directory's contents into the run's artifacts (synchronous)."""
    run = runs.current_run(run_id)
    path = Path(local_dir)
    if not path.is_dir():
        raise InvalidInputError("local_dir", str(local_dir), "is not an existing directory")
    _check_artifact_path("artifact_path", artifact_path)
    from mltrack.experiments import store_errors

    with store_errors(run.store):
        run.store.client.log_artifacts(run.run_id, str(path), artifact_path)


def _log_content(run: runs.ActiveRun, content: str, artifact_file: str) -> None:
    _check_artifact_path("artifact_file", artifact_file)
    if not artifact_file or artifact_file.endswith("/"):
        raise InvalidInputError("artifact_file", artifact_file, "must name a file, e.g. 'config.json'")
    artifact_dir, name = os.path.split(artifact_file)
    with tempfile.TemporaryDirectory(prefix="mltrack-") as tmp:
        target = Path(tmp) / name
        target.write_text(content, encoding="utf-8")
        from mltrack.experiments import store_errors

        with store_errors(run.store):
            run.store.client.log_artifact(run.run_id, str(target), artifact_dir or None)


def log_text(text: str, artifact_file: str, *, run_id: str | None = None) -> None:
    """Save ``text`` as the artifact ``artifact_file`` (synchronous)."""
    run = runs.current_run(run_id)
    if not isinstance(text, str):
        raise InvalidInputError("text", text, "must be a string")
    _log_content(run, text, artifact_file)


def log_dict(dictionary: dict[str, Any], artifact_file: str, *, run_id: str | None = None) -> None:
    """Save a dict as JSON (or YAML for ``.yaml``/``.yml``) artifact (synchronous)."""
    run = runs.current_run(run_id)
    if not isinstance(dictionary, dict):
        raise InvalidInputError("dictionary", dictionary, "must be a dict")
    if artifact_file.endswith((".yaml", ".yml")):
        import yaml

        content = yaml.safe_dump(dictionary, sort_keys=False)
    else:
        try:
            content = json.dumps(dictionary, indent=2, default=str)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("dictionary", dictionary, f"is not JSON-serialisable: {exc}") from None
    _log_content(run, content, artifact_file)
