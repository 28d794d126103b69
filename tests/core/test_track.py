"""@mltrack.track: params from arguments, metrics from the result, status, nesting, async."""

from __future__ import annotations

import asyncio
from typing import Any

import mlflow
import numpy as np
import pytest

import mltrack
from mltrack.tracking.decorator import DURATION_METRIC, params_from_call


def stored(uri: str, run_name: str) -> Any:
    runs = mlflow.MlflowClient(uri).search_runs(["0"], f"attributes.run_name = '{run_name}'")
    assert len(runs) == 1, runs
    return runs[0]


def test_bare_decorator_records_args_result_and_duration(sqlite_uri: str) -> None:
    @mltrack.track
    def train(lr: float, epochs: int = 3) -> dict[str, Any]:
        return {"accuracy": 0.9, "eval": {"f1": 0.8}, "note": "not a number"}

    assert train(0.1) == {"accuracy": 0.9, "eval": {"f1": 0.8}, "note": "not a number"}
    run = stored(sqlite_uri, "test_bare_decorator_records_args_result_and_duration.<locals>.train")
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "epochs": "3"}
    assert run.data.metrics["accuracy"] == 0.9
    assert run.data.metrics["eval.f1"] == 0.8
    assert "note" not in run.data.metrics
    assert run.data.metrics[DURATION_METRIC] >= 0


def test_configured_decorator_uses_experiment_name_and_tags(sqlite_uri: str) -> None:
    @mltrack.track(experiment="decorated", run_name="custom", tags={"kind": "unit"})
    def job() -> None:
        mltrack.log_metric("inside", 1.0)

    job()
    exp = mltrack.get_experiment("decorated")
    runs = mlflow.MlflowClient(sqlite_uri).search_runs([exp.experiment_id])
    assert [r.info.run_name for r in runs] == ["custom"]
    assert runs[0].data.tags["kind"] == "unit"
    assert runs[0].data.metrics["inside"] == 1.0


def test_exception_marks_failed_records_error_and_reraises(sqlite_uri: str) -> None:
    @mltrack.track(run_name="boom")
    def explode(x: int) -> None:
        raise ValueError(f"bad x={x}")

    with pytest.raises(ValueError, match="bad x=7"):
        explode(7)
    run = stored(sqlite_uri, "boom")
    assert run.info.status == "FAILED"
    assert run.data.tags["mltrack.error.type"] == "ValueError"
    assert run.data.tags["mltrack.error.message"] == "bad x=7"
    assert DURATION_METRIC in run.data.metrics
    paths = {a.path for a in mlflow.MlflowClient(sqlite_uri).list_artifacts(run.info.run_id, "error")}
    assert paths == {"error/traceback.txt"}
    assert mltrack.active_run() is None


def test_nested_call_becomes_a_child_run(sqlite_uri: str) -> None:
    @mltrack.track(run_name="inner")
    def inner(fold: int) -> dict[str, float]:
        return {"score": fold / 10}

    @mltrack.track(run_name="outer")
    def outer() -> None:
        for fold in range(2):
            inner(fold)

    outer()
    parent = stored(sqlite_uri, "outer")
    children = mlflow.MlflowClient(sqlite_uri).search_runs(["0"], "attributes.run_name = 'inner'")
    assert len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(c.data.params["fold"] for c in children) == ["0", "1"]


def test_decorated_function_inside_start_run_is_nested(sqlite_uri: str) -> None:
    @mltrack.track(run_name="step")
    def step() -> None:
        pass

    with mltrack.start_run("manual") as parent:
        step()
        assert mltrack.active_run() is parent
    assert stored(sqlite_uri, "step").data.tags["mlflow.parentRunId"] == parent.run_id


def test_async_functions_are_tracked_concurrently(sqlite_uri: str) -> None:
    @mltrack.track
    async def evaluate(seed: int) -> dict[str, float]:
        await asyncio.sleep(0.01)
        mltrack.log_metric("seed_seen", float(seed))
        return {"score": seed * 1.5}

    async def main() -> list[dict[str, float]]:
        return list(await asyncio.gather(evaluate(1), evaluate(2)))

    assert asyncio.run(main()) == [{"score": 1.5}, {"score": 3.0}]
    runs = mlflow.MlflowClient(sqlite_uri).search_runs(["0"])
    by_seed = {r.data.params["seed"]: r.data.metrics for r in runs}
    # each task logged into its own run, not its sibling's
    assert by_seed["1"]["seed_seen"] == 1.0 and by_seed["1"]["score"] == 1.5
    assert by_seed["2"]["seed_seen"] == 2.0 and by_seed["2"]["score"] == 3.0


def test_param_rule_for_values_that_are_not_scalars() -> None:
    class Model:
        def fit(self, data: Any, config: dict[str, Any], layers: list[int], *extra: Any, **options: Any) -> None:
            pass

    params = params_from_call(
        Model.fit,
        (Model(), np.zeros((100, 3)), {"opt": {"lr": 0.1}}, [64, 32], "x"),
        {"verbose": True, "callback": print},
    )
    assert params == {
        "data": "<ndarray shape=(100, 3)>",
        "config.opt.lr": 0.1,
        "layers": "[64, 32]",
        "extra.0": "x",
        "verbose": True,
        "callback": "<builtin_function_or_method>",
    }


def test_track_rejects_a_non_callable() -> None:
    with pytest.raises(mltrack.InvalidInputError, match="track"):
        mltrack.track(42)  # type: ignore[call-overload]
