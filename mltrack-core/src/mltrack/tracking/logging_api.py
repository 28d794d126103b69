"""The logging calls: validate at the call, then enqueue for the background writer.

Nothing is queued unless every item of the call is valid, so a rejected call never
leaves half its data behind. A call either returns, and its data is then stored as
given, or raises an ``MLTrackError``: bad input is an ``InvalidInputError`` subclass
(the rules are in ``mltrack.storage.validation``), a spool that cannot be written a
``SpoolWriteError``; in-memory run state changes only once the spool has the data.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import tempfile
import time
from pathlib import Path
from typing import Any

from mltrack.errors import InvalidInputError, InvalidParamValueError, SpoolWriteError
from mltrack.storage.validation import (
    INT64_MAX,
    INT64_MIN,
    _valid_keys,
    bad_path,
    check_key,
    check_step,
    check_text,
    check_timestamp,
    check_utf8,
    coerce_metric_value,
    flatten,
    param_to_string,
    refuse,
    tag_to_string,
)
from mltrack.storage.writer import METRIC, PARAM, TAG
from mltrack.tracking import runs
from mltrack.tracking.experiments import store_errors

# yaml and the settings (pydantic) are imported inside functions, not by `import mltrack` (benchmarks/import_time.py).

_metric_keys = _valid_keys["metric"]
_isfinite = math.isfinite
_time_ns = time.time_ns


def _nonfinite_allowed() -> bool:
    # Read on each call (only non-float or non-finite values get here), so configure()
    # takes effect at once.
    from mltrack.config.settings import get_settings

    return get_settings().allow_nonfinite_metrics


def reset_cached_settings() -> None:
    """Kept for callers that reset MLTrack state; nothing is cached any more."""


def _run(run_id: Any) -> runs.ActiveRun:
    if run_id is not None and type(run_id) is not str:
        # a list would raise TypeError (unhashable) in the run lookup
        raise refuse(InvalidInputError, "run_id", run_id, "must be a run id string")
    return runs.current_run(run_id)


def _spool_failed(run: runs.ActiveRun, exc: OSError) -> SpoolWriteError:
    folder = getattr(run.spool, "path", None) or "the spool folder"
    return SpoolWriteError(
        f"could not write to the spool folder {folder} ({exc.strerror or exc}, errno {exc.errno}): "
        "the call's data was not accepted",
        errno=exc.errno,
        hint="check that the folder is writable and has room (or point MLTRACK_DATA_DIR elsewhere), then retry",
    )


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None, *, run_id: str | None = None
) -> None:
    """Log one metric point (non-blocking). ``timestamp`` is in ms; ``step`` defaults to 0."""
    run = runs.current_run(run_id) if run_id is None else _run(run_id)
    # `type(key) is not str` first: the set lookup would raise TypeError for a list key.
    if type(key) is not str or key not in _metric_keys:
        check_key("metric", key)
    if type(value) is not float or not _isfinite(value):
        value = coerce_metric_value(key, value, allow_nonfinite=_nonfinite_allowed())
    # Steps and timestamps are int64 in every store; the range test is two comparisons.
    if step is None:
        step = 0
    elif type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
        step = check_step(f"metric {key!r}", step)
    if timestamp is None:
        timestamp = _time_ns() // 1_000_000
    elif type(timestamp) is not int or not 0 <= timestamp <= INT64_MAX:
        timestamp = check_timestamp(f"metric {key!r}", timestamp)
    spool = run.spool
    if spool is not None:
        try:
            spool.append_metric(key, value, timestamp, step)  # the writer reads it back from the spool
        except OSError as exc:
            raise _spool_failed(run, exc) from None
    else:
        runs.get_writer().put((METRIC, run.run_id, key, value, timestamp, step, -1))


def log_metrics(
    metrics: dict[str, Any], step: int | None = None, timestamp: int | None = None, *, run_id: str | None = None
) -> None:
    """Log several metrics at one step; nested dicts are flattened to dotted names."""
    run = _run(run_id)
    if not isinstance(metrics, dict):
        raise refuse(InvalidInputError, "metrics", metrics, "must be a dict of name -> number")
    allow = _nonfinite_allowed()
    flat = flatten(metrics, strict=True)
    checked = [(check_key("metric", k), coerce_metric_value(k, v, allow_nonfinite=allow)) for k, v in flat.items()]
    step = 0 if step is None else check_step("metrics", step)
    timestamp = _time_ns() // 1_000_000 if timestamp is None else check_timestamp("metrics", timestamp)
    put = runs.get_writer().put
    spool = run.spool
    for key, value in checked:
        if spool is not None:
            try:
                spool.append_metric(key, value, timestamp, step)
            except OSError as exc:
                raise _spool_failed(run, exc) from None
        else:
            put((METRIC, run.run_id, key, value, timestamp, step, -1))


def _check_param(run: runs.ActiveRun, key: Any, value: Any) -> tuple[str, str]:
    check_key("param", key)
    text = param_to_string(key, value)
    previous = run.params.get(key)
    if previous is not None and previous != text:
        raise refuse(
            InvalidParamValueError,
            f"param {key!r} value",
            value,
            f"conflicts with the value {previous!r} already logged in this run",
            hint="MLflow params are immutable: use a new param name, a tag, or a new run",
        )
    return key, text


def log_param(key: str, value: Any, *, run_id: str | None = None) -> str:
    """Log a param (non-blocking); returns the string stored."""
    run = _run(run_id)
    key, text = _check_param(run, key, value)
    if run.params.get(key) != text:
        _spool_record(run, "p", key, text)
        # recorded only now: had the spool write failed, a retry must log it again
        run.params[key] = text
        runs.writer_put(run)((PARAM, run.run_id, key, text))
    return text


def _spool_record(run: runs.ActiveRun, kind: str, key: str, text: str) -> None:
    if run.spool is not None and not run.spool.closed:
        try:
            run.spool.append_record({kind: [key, text]})
        except OSError as exc:
            raise _spool_failed(run, exc) from None


def log_params(params: dict[str, Any], *, run_id: str | None = None) -> None:
    """Log several params; nested dicts are flattened to dotted names (``opt.lr``)."""
    run = _run(run_id)
    if not isinstance(params, dict):
        raise refuse(InvalidInputError, "params", params, "must be a dict of name -> value")
    checked = [_check_param(run, k, v) for k, v in flatten(params, strict=True).items()]
    put = runs.writer_put(run)
    for key, text in checked:
        if run.params.get(key) != text:
            _spool_record(run, "p", key, text)
            run.params[key] = text
            put((PARAM, run.run_id, key, text))


def set_tag(key: str, value: Any, *, run_id: str | None = None) -> None:
    """Set a tag (non-blocking); a later value replaces an earlier one."""
    run = _run(run_id)
    text = tag_to_string(check_key("tag", key), value)
    _spool_record(run, "t", key, text)
    runs.writer_put(run)((TAG, run.run_id, key, text))


def set_tags(tags: dict[str, Any], *, run_id: str | None = None) -> None:
    """Set several tags at once."""
    run = _run(run_id)
    if not isinstance(tags, dict):
        raise refuse(InvalidInputError, "tags", tags, "must be a dict of name -> value")
    checked = [(check_key("tag", k), tag_to_string(k, v)) for k, v in tags.items()]
    put = runs.writer_put(run)
    for key, text in checked:
        _spool_record(run, "t", key, text)
        put((TAG, run.run_id, key, text))


def _check_artifact_path(field: str, artifact_path: Any) -> None:
    """Refuse what MLflow's artifact stores refuse (None and "" mean the run's root)."""
    if artifact_path is None or artifact_path == "":
        return
    if not isinstance(artifact_path, str):
        raise refuse(InvalidInputError, field, artifact_path, "must be a string path such as 'plots/loss'")
    check_text(InvalidInputError, field, artifact_path, 4096)
    # MLflow's local store refuses a path that normalising would change (its bad-path
    # rule, as for names); the server's artifact proxy also refuses '#' and backslashes.
    norm = bad_path(artifact_path)
    if norm is not None or "#" in artifact_path or "\\" in artifact_path:
        raise refuse(
            InvalidInputError,
            field,
            artifact_path,
            "must be a plain relative path inside the run's artifacts",
            hint="use '/' between parts, with no leading, trailing or doubled '/', no '.', '..', '#' or '\\'",
        )


def _check_local_path(field: str, local_path: Any) -> Path:
    try:
        return Path(local_path)
    except TypeError:  # not a str or os.PathLike of str
        raise refuse(InvalidInputError, field, local_path, "must be a path (str or os.PathLike)") from None


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> None:
    """Upload a file into the run's artifacts (synchronous)."""
    run = _run(run_id)
    path = _check_local_path("local_path", local_path)
    if not path.is_file():
        raise refuse(
            InvalidInputError,
            "local_path",
            str(path),
            "is not an existing file",
            hint="use log_artifacts for a directory",
        )
    _check_artifact_path("artifact_path", artifact_path)
    if "#" in path.name:  # the server's artifact proxy refuses it in the upload path
        raise refuse(InvalidInputError, "local_path", str(path), "has a '#' in its file name", hint="rename the file")

    with store_errors(run.store):
        run.store.client.log_artifact(run.run_id, str(path), artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, *, run_id: str | None = None
) -> None:
    """Upload a directory's contents into the run's artifacts (synchronous)."""
    run = _run(run_id)
    path = _check_local_path("local_dir", local_dir)
    if not path.is_dir():
        raise refuse(InvalidInputError, "local_dir", str(path), "is not an existing directory")
    _check_artifact_path("artifact_path", artifact_path)

    with store_errors(run.store):
        run.store.client.log_artifacts(run.run_id, str(path), artifact_path)


def _check_artifact_file(artifact_file: Any) -> tuple[str, str]:
    """Split ``artifact_file`` into (folder, file name), refusing what MLflow refuses."""
    if not isinstance(artifact_file, str):
        raise refuse(InvalidInputError, "artifact_file", artifact_file, "must be a string, e.g. 'config.json'")
    artifact_dir, name = posixpath.split(artifact_file)
    if not name or name in (".", ".."):
        raise refuse(InvalidInputError, "artifact_file", artifact_file, "must name a file, e.g. 'config.json'")
    _check_artifact_path("artifact_file", artifact_file)
    return artifact_dir, name


def _log_content(run: runs.ActiveRun, content: str, artifact_dir: str, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mltrack-") as tmp:
        target = Path(tmp) / name
        target.write_text(content, encoding="utf-8")

        with store_errors(run.store):
            run.store.client.log_artifact(run.run_id, str(target), artifact_dir or None)


def log_text(text: str, artifact_file: str, *, run_id: str | None = None) -> None:
    """Save ``text`` as the artifact ``artifact_file`` (synchronous)."""
    run = _run(run_id)
    if not isinstance(text, str):
        raise refuse(InvalidInputError, "text", text, "must be a string")
    check_utf8(InvalidInputError, "text", text)  # the artifact is a UTF-8 file
    artifact_dir, name = _check_artifact_file(artifact_file)
    _log_content(run, text, artifact_dir, name)


def log_dict(dictionary: dict[str, Any], artifact_file: str, *, run_id: str | None = None) -> None:
    """Save a dict as JSON (or YAML for ``.yaml``/``.yml``) artifact (synchronous)."""
    run = _run(run_id)
    if not isinstance(dictionary, dict):
        raise refuse(InvalidInputError, "dictionary", dictionary, "must be a dict")
    artifact_dir, name = _check_artifact_file(artifact_file)
    try:
        if name.endswith((".yaml", ".yml")):
            import yaml

            content = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            content = json.dumps(dictionary, indent=2, default=str)
    except Exception as exc:
        # yaml's RepresenterError, a circular reference, an int of more than 4300 digits...
        raise refuse(
            InvalidInputError, "dictionary", dictionary, f"cannot be written as {name}: {exc}", hint="log plain data"
        ) from None
    check_utf8(InvalidInputError, "dictionary", content)
    _log_content(run, content, artifact_dir, name)
