"""Bad input is rejected at the call with an error naming the field and value; nothing is queued."""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

import mltrack
from mltrack.tracking import runs


@pytest.fixture
def run(sqlite_uri: str) -> Any:
    with mltrack.start_run() as active:
        yield active


def queued() -> tuple[int, int, int]:
    """What the run has accepted: the thread writer's queue, the spool's unsent metric slots and
    the size of its log (params and tags), so that either writer (thread or process) is checked."""
    spool = runs.active_run().spool  # type: ignore[union-attr]
    log = (spool.path / "log").stat().st_size if spool else 0
    return len(getattr(runs.get_writer(), "_queue", ())), spool.written_since(0) if spool else 0, log


BAD_CALLS = [
    pytest.param(lambda: mltrack.log_metric("bad name!", 1.0), mltrack.InvalidKeyError, "bad name!", id="metric-key"),
    pytest.param(lambda: mltrack.log_metric("", 1.0), mltrack.InvalidKeyError, "metric name", id="empty-key"),
    pytest.param(lambda: mltrack.log_metric("x" * 251, 1.0), mltrack.InvalidKeyError, "251", id="long-key"),
    pytest.param(lambda: mltrack.log_metric("../up", 1.0), mltrack.InvalidKeyError, "'../up'", id="path-key"),
    pytest.param(lambda: mltrack.log_metric(7, 1.0), mltrack.InvalidKeyError, "7", id="int-key"),
    pytest.param(lambda: mltrack.log_metric("loss", "0.5"), mltrack.InvalidMetricValueError, "'0.5'", id="str-value"),
    pytest.param(lambda: mltrack.log_metric("loss", None), mltrack.InvalidMetricValueError, "None", id="none-value"),
    pytest.param(lambda: mltrack.log_metric("loss", [1.0]), mltrack.InvalidMetricValueError, "[1.0]", id="list-value"),
    pytest.param(lambda: mltrack.log_metric("loss", math.nan), mltrack.InvalidMetricValueError, "nan", id="nan"),
    pytest.param(lambda: mltrack.log_metric("loss", math.inf), mltrack.InvalidMetricValueError, "inf", id="inf"),
    pytest.param(
        lambda: mltrack.log_metric("loss", 1.0, step=1.5), mltrack.InvalidMetricValueError, "step", id="float-step"
    ),
    pytest.param(
        lambda: mltrack.log_metric("loss", 1.0, timestamp=-1),
        mltrack.InvalidMetricValueError,
        "timestamp",
        id="negative-timestamp",
    ),
    pytest.param(
        lambda: mltrack.log_metrics({"ok": 1.0, "bad": "x"}),
        mltrack.InvalidMetricValueError,
        "'bad'",
        id="metrics-one-bad",
    ),
    pytest.param(
        lambda: mltrack.log_param("model", object()), mltrack.InvalidParamValueError, "model", id="param-object"
    ),
    pytest.param(
        lambda: mltrack.log_param("p", "v" * 6001), mltrack.InvalidParamValueError, "6001", id="param-too-long"
    ),
    pytest.param(
        lambda: mltrack.log_params({"a": 1, "b c!": 2}), mltrack.InvalidKeyError, "b c!", id="params-one-bad-key"
    ),
    pytest.param(lambda: mltrack.set_tag("t", "v" * 8001), mltrack.InvalidTagValueError, "8001", id="tag-too-long"),
    pytest.param(
        lambda: mltrack.set_tags({"ok": "1", "t": {"a": 1}}), mltrack.InvalidTagValueError, "'t'", id="tag-dict"
    ),
    pytest.param(lambda: mltrack.log_metrics([1, 2]), mltrack.InvalidInputError, "metrics", id="metrics-not-dict"),
]


@pytest.mark.parametrize(("call", "error", "named"), BAD_CALLS)
def test_bad_input_raises_naming_field_and_value_and_queues_nothing(
    run: Any, call: Any, error: type[Exception], named: str
) -> None:
    mltrack.flush()
    before = queued()
    with pytest.raises(error) as info:
        call()
    assert named in str(info.value)
    assert isinstance(info.value, mltrack.MLTrackError)
    assert queued() == before


def test_rejected_batch_call_leaves_nothing_in_the_store(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        with pytest.raises(mltrack.InvalidMetricValueError):
            mltrack.log_metrics({"good": 1.0, "bad": math.nan})
        with pytest.raises(mltrack.InvalidKeyError):
            mltrack.log_params({"fine": 1, "not fine!": 2})
    got = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id)
    assert got.data.metrics == {}
    assert got.data.params == {}


def test_param_conflict_is_refused_but_same_value_is_fine(run: Any) -> None:
    mltrack.log_param("lr", 0.1)
    mltrack.log_param("lr", 0.1)
    with pytest.raises(mltrack.InvalidParamValueError, match=r"conflicts with the value '0.1'"):
        mltrack.log_param("lr", 0.2)


def test_numpy_and_int_values_are_numbers(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_metric("np", np.float32(0.5), step=np.int64(3))
        mltrack.log_metric("int", 2)
        mltrack.log_param("np_param", np.int64(4))
    got = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id)
    assert got.data.metrics == {"np": 0.5, "int": 2.0}
    assert got.data.params == {"np_param": "4"}


def test_nonfinite_metrics_are_stored_when_allowed(sqlite_uri: str) -> None:
    mltrack.configure(allow_nonfinite_metrics=True)
    with mltrack.start_run() as active:
        mltrack.log_metric("diverged", math.nan, step=0)
        mltrack.log_metric("exploded", math.inf, step=0)
    got = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id)
    assert math.isnan(got.data.metrics["diverged"])
    assert got.data.metrics["exploded"] > 1e308


def test_logging_without_a_run_says_how_to_start_one(sqlite_uri: str) -> None:
    with pytest.raises(mltrack.NoActiveRunError, match="start_run"):
        mltrack.log_metric("loss", 1.0)


def test_bad_start_run_tags_create_nothing(sqlite_uri: str) -> None:
    with pytest.raises(mltrack.InvalidKeyError):
        mltrack.start_run(tags={"bad key!": "x"})
    assert mlflow.MlflowClient(sqlite_uri).search_runs(["0"]) == []


# -- names MLflow refuses (issue 11): refused at the call, for every kind of name ------------------

LOGGING_CALLS = {
    "metric": lambda key: mltrack.log_metric(key, 1.0),
    "metrics": lambda key: mltrack.log_metrics({key: 1.0}),
    "param": lambda key: mltrack.log_param(key, 1),
    "params": lambda key: mltrack.log_params({key: 1}),
    "tag": lambda key: mltrack.set_tag(key, "v"),
    "tags": lambda key: mltrack.set_tags({key: "v"}),
}


@pytest.mark.parametrize("call", LOGGING_CALLS.values(), ids=LOGGING_CALLS.keys())
def test_names_that_change_when_read_as_paths_are_refused(run: Any, call: Any) -> None:
    for key in [".", "a/", "a//b", "..a", "./a", "a/./b", "/a", "a/../b"]:
        with pytest.raises(mltrack.InvalidKeyError, match="would resolve to the path"):
            call(key)


@pytest.mark.parametrize("call", LOGGING_CALLS.values(), ids=LOGGING_CALLS.keys())
def test_a_lone_surrogate_in_a_name_is_refused(run: Any, call: Any) -> None:
    with pytest.raises(mltrack.InvalidKeyError, match="characters MLflow does not allow"):
        call("loss\ud800")


SINGLE_CALLS = {name: call for name, call in LOGGING_CALLS.items() if name in ("metric", "param", "tag")}
BATCH_CALLS = {name: call for name, call in LOGGING_CALLS.items() if name not in SINGLE_CALLS}


@pytest.mark.parametrize("call", SINGLE_CALLS.values(), ids=SINGLE_CALLS.keys())
@pytest.mark.parametrize("key", [["a"], {"a": 1}, None, b"a"], ids=["list", "dict", "none", "bytes"])
def test_a_name_that_is_not_a_string_is_refused_not_a_type_error(run: Any, call: Any, key: Any) -> None:
    with pytest.raises(mltrack.InvalidKeyError, match="must be a string"):
        call(key)


@pytest.mark.parametrize("call", BATCH_CALLS.values(), ids=BATCH_CALLS.keys())
@pytest.mark.parametrize("key", [("a",), b"a", 7], ids=["tuple", "bytes", "int"])
def test_a_dict_key_that_is_not_a_string_is_refused(run: Any, call: Any, key: Any) -> None:
    with pytest.raises(mltrack.InvalidKeyError, match="must be a string"):
        call(key)


def test_names_mlflow_accepts_are_accepted_and_stored_as_given(sqlite_uri: str) -> None:
    names = [" padded ", "größe", "x" * 250, "a:b/c-d.e f", "loss\n"]
    with mltrack.start_run() as active:
        for name in names:
            mltrack.log_metric(name, 1.0)
            mltrack.log_param(name, "p")
            mltrack.set_tag(name, "t")
    got = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id).data
    assert set(names) <= set(got.metrics) and set(names) <= set(got.params) and set(names) <= set(got.tags)


# -- values no store can hold ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: mltrack.log_param("p", "bad\ud800"),
        lambda: mltrack.log_params({"p": "\udfff"}),
        lambda: mltrack.set_tag("t", "bad\ud800"),
        lambda: mltrack.set_tags({"t": "\udc80"}),
    ],
    ids=["param", "params", "tag", "tags"],
)
def test_a_lone_surrogate_in_a_param_or_tag_value_is_refused(run: Any, call: Any) -> None:
    mltrack.flush()
    before = queued()
    with pytest.raises(mltrack.InvalidInputError, match="lone surrogate"):
        call()
    assert queued() == before


@pytest.mark.parametrize(
    "call",
    [lambda: mltrack.log_param("p", "a\x00b"), lambda: mltrack.set_tag("t", "\x00")],
    ids=["param", "tag"],
)
def test_a_nul_character_in_a_param_or_tag_value_is_refused_because_postgresql_refuses_it(run: Any, call: Any) -> None:
    with pytest.raises(mltrack.InvalidInputError, match="NUL character"):
        call()


def test_the_value_length_limits_are_mlflows_6000_and_8000_characters(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_param("p", "v" * 6000)
        mltrack.set_tag("t", "v" * 8000)
        with pytest.raises(mltrack.InvalidParamValueError, match="6001 characters"):
            mltrack.log_param("q", "v" * 6001)
        with pytest.raises(mltrack.InvalidTagValueError, match="8001 characters"):
            mltrack.set_tag("u", "v" * 8001)
    got = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id).data
    assert len(got.params["p"]) == 6000 and len(got.tags["t"]) == 8000


def test_an_int_too_long_to_print_is_refused_not_a_value_error(run: Any) -> None:
    with pytest.raises(mltrack.InvalidParamValueError, match="too long"):
        mltrack.log_param("p", 10**5000)
    with pytest.raises(mltrack.InvalidMetricValueError, match="int that cannot be shown"):
        mltrack.log_metric("m", 10**5000)


# -- metric values, steps and timestamps ----------------------------------------------------------


def test_an_int_metric_value_beyond_the_float_range_is_refused_not_an_overflow_error(run: Any) -> None:
    with pytest.raises(mltrack.InvalidMetricValueError, match="too large for a 64-bit float"):
        mltrack.log_metric("m", 10**400)
    with pytest.raises(mltrack.InvalidMetricValueError, match="too large for a 64-bit float"):
        mltrack.log_metrics({"m": -(10**400)})


def test_a_large_int_metric_value_within_the_float_range_is_stored_as_its_float(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_metric("m", 2**1000)
    assert mlflow.MlflowClient(sqlite_uri).get_run(active.run_id).data.metrics["m"] == float(2**1000)


@pytest.mark.parametrize("spool", [True, False], ids=["spool-on", "spool-off"])
@pytest.mark.parametrize(
    "call",
    [
        lambda: mltrack.log_metric("m", 1.0, step=2**63),
        lambda: mltrack.log_metric("m", 1.0, step=-(2**63) - 1),
        lambda: mltrack.log_metric("m", 1.0, step=10**30),
        lambda: mltrack.log_metrics({"m": 1.0}, step=2**63),
        lambda: mltrack.log_metric("m", 1.0, timestamp=2**63),
        lambda: mltrack.log_metrics({"m": 1.0}, timestamp=2**64),
    ],
    ids=["step", "negative-step", "huge-step", "metrics-step", "timestamp", "metrics-timestamp"],
)
def test_a_step_or_timestamp_outside_int64_is_refused(sqlite_uri: str, spool: bool, call: Any) -> None:
    mltrack.configure(spool=spool)
    with mltrack.start_run(), pytest.raises(mltrack.InvalidMetricValueError, match="64-bit integer"):
        call()


def test_the_int64_extremes_and_negative_steps_are_stored_exactly(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_metric("m", 1.0, step=2**63 - 1, timestamp=2**63 - 1)
        mltrack.log_metric("m", 2.0, step=-(2**63), timestamp=0)
        mltrack.log_metric("m", 3.0, step=-5, timestamp=1)
    history = mlflow.MlflowClient(sqlite_uri).get_metric_history(active.run_id, "m")
    assert sorted((p.step, p.timestamp) for p in history) == [(-(2**63), 0), (-5, 1), (2**63 - 1, 2**63 - 1)]


@pytest.mark.parametrize(
    "step",
    [np.array([1, 2]), np.array(3), np.float64(2.0), 2.0, True, "3"],
    ids=["array", "0d-array", "np-float", "float", "bool", "str"],
)
def test_a_step_that_is_not_an_integer_is_refused(run: Any, step: Any) -> None:
    with pytest.raises(mltrack.InvalidMetricValueError, match="must be an integer"):
        mltrack.log_metric("m", 1.0, step=step)


def test_numpy_integer_steps_and_timestamps_are_stored_as_ints(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_metric("m", 1.0, step=np.int64(7), timestamp=np.uint32(12))
    (point,) = mlflow.MlflowClient(sqlite_uri).get_metric_history(active.run_id, "m")
    assert (point.step, point.timestamp) == (7, 12)


@pytest.mark.parametrize(
    "value",
    [np.array([1.0, 2.0]), 1 + 2j, np.complex128(1 + 2j), b"1.0"],
    ids=["array", "complex", "np-complex", "bytes"],
)
def test_a_metric_value_that_is_not_one_real_number_is_refused(run: Any, value: Any) -> None:
    with pytest.raises(mltrack.InvalidMetricValueError):
        mltrack.log_metric("m", value)


def test_one_element_arrays_and_bools_are_stored_as_mlflows_client_stores_them(sqlite_uri: str) -> None:
    with mltrack.start_run() as active:
        mltrack.log_metric("array", np.array([0.25]))
        mltrack.log_metric("flag", True)
    metrics = mlflow.MlflowClient(sqlite_uri).get_run(active.run_id).data.metrics
    assert (metrics["array"], metrics["flag"]) == (0.25, 1.0)


def test_log_metrics_refuses_a_name_that_is_not_a_string(run: Any) -> None:
    with pytest.raises(mltrack.InvalidKeyError, match="must be a string"):
        mltrack.log_metrics({1: 2.0})


def test_a_run_id_that_is_not_a_string_is_refused(run: Any) -> None:
    with pytest.raises(mltrack.InvalidInputError, match="run_id"):
        mltrack.log_metric("m", 1.0, run_id=["x"])  # type: ignore[arg-type]


# -- accepted means stored: the spool write comes before any in-memory state -----------------------


def _failing(kind: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(kind, os.strerror(kind))

    return fail


@pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda: mltrack.log_param("p", 1), "append_record"),
        (lambda: mltrack.log_params({"p": 1}), "append_record"),
        (lambda: mltrack.set_tag("t", "v"), "append_record"),
        (lambda: mltrack.set_tags({"t": "v"}), "append_record"),
        (lambda: mltrack.log_metric("m", 1.0), "append_metric"),
        (lambda: mltrack.log_metrics({"m": 1.0}), "append_metric"),
    ],
    ids=["param", "params", "tag", "tags", "metric", "metrics"],
)
def test_an_os_error_from_the_spool_is_a_spool_write_error_naming_the_folder(
    run: Any, monkeypatch: pytest.MonkeyPatch, call: Any, method: str
) -> None:
    monkeypatch.setattr(run.spool, method, _failing(errno.EIO))
    with pytest.raises(mltrack.errors.SpoolWriteError) as info:
        call()
    assert str(run.spool.path) in str(info.value)
    assert os.strerror(errno.EIO) in str(info.value)
    assert info.value.errno == errno.EIO


@pytest.mark.parametrize(
    "call", [lambda: mltrack.log_param("p", 1), lambda: mltrack.log_params({"p": 1})], ids=["param", "params"]
)
def test_a_param_whose_spool_write_failed_is_stored_by_the_retry(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    with mltrack.start_run() as active:
        with monkeypatch.context() as patch:
            patch.setattr(active.spool, "append_record", _failing(errno.ENOSPC))
            with pytest.raises(mltrack.MLTrackError):
                call()
        assert "p" not in active.params
        call()
    assert mlflow.MlflowClient(sqlite_uri).get_run(active.run_id).data.params == {"p": "1"}


# -- start_run's tags, run_name and description ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"run_name": "n" * 251}, mltrack.InvalidInputError, "251 characters"),
        ({"run_name": "a\x00b"}, mltrack.InvalidInputError, "NUL"),
        ({"run_name": "\ud800"}, mltrack.InvalidInputError, "surrogate"),
        ({"run_name": 7}, mltrack.InvalidInputError, "must be a string"),
        ({"description": "d" * 8001}, mltrack.InvalidTagValueError, "8001 characters"),
        ({"description": "\ud800"}, mltrack.InvalidTagValueError, "surrogate"),
        ({"tags": ["a"]}, mltrack.InvalidInputError, "must be a dict"),
        ({"tags": {"a//b": "x"}}, mltrack.InvalidKeyError, "would resolve"),
        ({"tags": {"t": "\x00"}}, mltrack.InvalidTagValueError, "NUL"),
        ({"tags": {"mlflow.runName": "x" * 251}}, mltrack.InvalidTagValueError, "251 characters"),
        ({"run_name": "a", "tags": {"mlflow.runName": "b"}}, mltrack.InvalidTagValueError, "differs"),
    ],
    ids=[
        "long-name",
        "nul-name",
        "surrogate-name",
        "int-name",
        "long-description",
        "surrogate-description",
        "tags-list",
        "bad-tag-key",
        "nul-tag",
        "long-name-tag",
        "two-names",
    ],
)
def test_bad_start_run_fields_are_refused_before_a_run_is_created(
    sqlite_uri: str, kwargs: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        mltrack.start_run(**kwargs)
    assert mlflow.MlflowClient(sqlite_uri).search_runs(["0"]) == []


# -- artifact arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda f: mltrack.log_artifact(123),
        lambda f: mltrack.log_artifact(f, artifact_path=5),
        lambda f: mltrack.log_artifact(f, artifact_path="a//b"),
        lambda f: mltrack.log_artifact(f, artifact_path="a/../b"),
        lambda f: mltrack.log_artifact(f, artifact_path="a#b"),
        lambda f: mltrack.log_artifacts(None),
        lambda f: mltrack.log_artifacts(f.parent, artifact_path="/abs"),
        lambda f: mltrack.log_text("x", 5),
        lambda f: mltrack.log_text("x", "dir/"),
        lambda f: mltrack.log_text("bad\ud800", "a.txt"),
        lambda f: mltrack.log_text("x", "a\x00.txt"),
        lambda f: mltrack.log_dict({"a": 1}, None),
        lambda f: mltrack.log_dict({"a": object()}, "a.yaml"),
        lambda f: mltrack.log_dict({"a": 10**5000}, "a.json"),
    ],
    ids=[
        "local-path-int",
        "artifact-path-int",
        "doubled-slash",
        "dot-dot",
        "hash",
        "local-dir-none",
        "absolute",
        "artifact-file-int",
        "artifact-file-folder",
        "surrogate-text",
        "nul-file-name",
        "artifact-file-none",
        "yaml-object",
        "huge-int-json",
    ],
)
def test_bad_artifact_arguments_are_refused_with_an_mltrack_error(run: Any, tmp_path: Path, call: Any) -> None:
    local = tmp_path / "file.txt"
    local.write_text("content")
    with pytest.raises(mltrack.InvalidInputError):
        call(local)
