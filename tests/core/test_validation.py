"""Bad input is rejected at the call with an error naming the field and value; nothing is queued."""

from __future__ import annotations

import math
from typing import Any

import mlflow
import numpy as np
import pytest

import mltrack
from mltrack import runs


@pytest.fixture
def run(sqlite_uri: str) -> Any:
    with mltrack.start_run() as active:
        yield active


def queued() -> int:
    return len(runs.get_writer()._queue)


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
