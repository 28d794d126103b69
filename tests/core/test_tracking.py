"""The tracking API against real stores: sqlite and a real mlflow server on PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pytest
from conftest import run_python

import mltrack


def client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri)


def test_context_manager_records_params_metrics_tags_and_finishes(tracking_uri: str) -> None:
    with mltrack.start_run("basic", experiment="tracking") as run:
        mltrack.log_param("lr", 0.01)
        mltrack.log_params({"optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "epochs": 3})
        mltrack.log_metric("loss", 0.5, step=1)
        mltrack.log_metrics({"acc": 0.75, "val": {"loss": 0.6}}, step=1)
        mltrack.set_tag("team", "vision")
        mltrack.set_tags({"stage": "dev", "attempt": 2})
    got = client(tracking_uri).get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "basic"
    assert got.data.params == {
        "lr": "0.01",
        "optimizer.name": "adam",
        "optimizer.betas": "[0.9, 0.999]",
        "epochs": "3",
    }
    assert got.data.metrics == {"loss": 0.5, "acc": 0.75, "val.loss": 0.6}
    assert got.data.tags["team"] == "vision"
    assert got.data.tags["attempt"] == "2"
    assert got.data.tags["mltrack.version"] == mltrack.__version__
    assert got.data.tags["mltrack.python"]
    assert got.data.tags["fixture.seen"] == "yes"  # the installed fixture plugin's context tag


def test_metric_steps_and_timestamps_are_kept(tracking_uri: str) -> None:
    with mltrack.start_run() as run:
        mltrack.log_metric("loss", 1.0, step=0, timestamp=1_700_000_000_000)
        mltrack.log_metric("loss", 0.5, step=10, timestamp=1_700_000_000_500)
    history = client(tracking_uri).get_metric_history(run.run_id, "loss")
    assert sorted((m.step, m.timestamp, m.value) for m in history) == [
        (0, 1_700_000_000_000, 1.0),
        (10, 1_700_000_000_500, 0.5),
    ]


def test_ten_thousand_metrics_all_arrive_with_steps(tracking_uri: str) -> None:
    before = int(time.time() * 1000)
    with mltrack.start_run() as run:
        for i in range(10_000):
            mltrack.log_metric("loss", 1.0 / (i + 1), step=i)
    history = client(tracking_uri).get_metric_history(run.run_id, "loss")
    assert len(history) == 10_000
    assert sorted(m.step for m in history) == list(range(10_000))
    assert all(m.timestamp >= before for m in history)
    assert client(tracking_uri).get_run(run.run_id).data.metrics["loss"] == pytest.approx(1e-4)


def test_nested_runs_record_their_parent(tracking_uri: str) -> None:
    with mltrack.start_run("parent", experiment="family") as parent:
        with mltrack.start_run("child", nested=True) as child:
            assert mltrack.active_run() is child
            mltrack.log_metric("inner", 1.0)
        assert mltrack.active_run() is parent
    got = client(tracking_uri).get_run(child.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id
    assert got.info.experiment_id == parent.experiment_id  # children stay with their parent
    assert got.data.metrics == {"inner": 1.0}
    assert mltrack.active_run() is None


def test_second_run_without_nested_is_refused(tracking_uri: str) -> None:
    with mltrack.start_run(), pytest.raises(mltrack.RunAlreadyActiveError, match="nested=True"):
        mltrack.start_run()


def test_resume_by_run_id_appends_to_the_same_run(tracking_uri: str) -> None:
    with mltrack.start_run() as first:
        mltrack.log_param("seed", 1)
        mltrack.log_metric("loss", 1.0, step=0)
    with mltrack.start_run(run_id=first.run_id) as resumed:
        assert resumed.run_id == first.run_id
        mltrack.log_metric("loss", 0.5, step=1)
        with pytest.raises(mltrack.InvalidParamValueError, match="already logged"):
            mltrack.log_param("seed", 2)
    history = client(tracking_uri).get_metric_history(first.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1]
    assert client(tracking_uri).get_run(first.run_id).info.status == "FINISHED"


def test_resume_unknown_run_names_the_id(tracking_uri: str) -> None:
    with pytest.raises(mltrack.RunNotFoundError, match="0123456789abcdef"):
        mltrack.start_run(run_id="0123456789abcdef0123456789abcdef")


def test_exception_in_block_marks_run_failed_and_propagates(tracking_uri: str) -> None:
    with pytest.raises(ZeroDivisionError), mltrack.start_run() as run:
        mltrack.log_metric("x", 1.0)
        _ = 1 / 0
    got = client(tracking_uri).get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics == {"x": 1.0}


def test_end_run_explicit_status(tracking_uri: str) -> None:
    run = mltrack.start_run()
    mltrack.log_metric("x", 2.0)
    mltrack.end_run("KILLED")
    assert mltrack.active_run() is None
    assert client(tracking_uri).get_run(run.run_id).info.status == "KILLED"
    with pytest.raises(mltrack.InvalidInputError, match="status"):
        mltrack.end_run("DONE")


def test_artifacts_dict_and_text(tracking_uri: str, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("hello")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n")
    with mltrack.start_run() as run:
        mltrack.log_artifact(tmp_path / "report.txt")
        mltrack.log_artifacts(folder, "plots")
        mltrack.log_dict({"lr": 0.1}, "config/params.json")
        mltrack.log_dict({"lr": 0.1}, "config/params.yaml")
        mltrack.log_text("notes", "notes.md")
    c = client(tracking_uri)
    names = {a.path for a in c.list_artifacts(run.run_id)}
    assert {"report.txt", "plots", "config", "notes.md"} <= names
    local = c.download_artifacts(run.run_id, "config/params.json", str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text()) == {"lr": 0.1}
    yaml_local = c.download_artifacts(run.run_id, "config/params.yaml", str(tmp_path / "dl2"))
    assert "lr: 0.1" in Path(yaml_local).read_text()


def test_artifact_errors_name_the_field(tracking_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run():
        with pytest.raises(mltrack.InvalidInputError, match="local_path"):
            mltrack.log_artifact(tmp_path / "missing.txt")
        with pytest.raises(mltrack.InvalidInputError, match="artifact_file"):
            mltrack.log_text("x", "../escape.txt")


def test_search_runs_filters_and_orders(tracking_uri: str) -> None:
    for lr in (0.1, 0.01, 0.001):
        with mltrack.start_run(experiment="search"):
            mltrack.log_param("lr", lr)
            mltrack.log_metric("loss", lr * 10)
    found = mltrack.search_runs("search", "metrics.loss < 0.5", order_by=["metrics.loss ASC"])
    assert [r.data.params["lr"] for r in found] == ["0.001", "0.01"]
    assert len(mltrack.search_runs(max_results=2)) == 2


def test_get_run_sees_queued_data_of_a_live_run(tracking_uri: str) -> None:
    with mltrack.start_run() as run:
        mltrack.log_metric("live", 3.0)
        assert mltrack.get_run(run.run_id).data.metrics == {"live": 3.0}


def test_experiments_create_get_set_list(tracking_uri: str) -> None:
    exp_id = mltrack.create_experiment("exp-a", tags={"owner": "me"})
    assert mltrack.get_experiment("exp-a").experiment_id == exp_id
    assert mltrack.get_experiment(exp_id).name == "exp-a"
    with pytest.raises(mltrack.MLTrackError, match="already exists"):
        mltrack.create_experiment("exp-a")
    mltrack.set_experiment("exp-b")
    with mltrack.start_run() as run:
        pass
    assert run.experiment_id == mltrack.get_experiment("exp-b").experiment_id
    assert {"exp-a", "exp-b"} <= {e.name for e in mltrack.list_experiments()}


def test_unknown_experiment_lists_existing_ones(tracking_uri: str) -> None:
    mltrack.create_experiment("known-one")
    with pytest.raises(mltrack.ExperimentNotFoundError) as info:
        mltrack.start_run(experiment_id="987654")
    assert "987654" in str(info.value)
    assert "known-one" in (info.value.hint or "")
    with pytest.raises(mltrack.ExperimentNotFoundError, match="nope"):
        mltrack.get_experiment("nope")


def test_runs_written_by_plain_mlflow_are_read_by_mltrack(tracking_uri: str) -> None:
    c = client(tracking_uri)
    exp = c.create_experiment("from-mlflow")
    run = c.create_run(exp, run_name="plain")
    c.log_param(run.info.run_id, "alpha", "0.5")
    c.log_metric(run.info.run_id, "rmse", 0.25, step=3)
    c.set_terminated(run.info.run_id)
    found = mltrack.search_runs("from-mlflow")
    assert [r.info.run_name for r in found] == ["plain"]
    got = mltrack.get_run(run.info.run_id)
    assert got.data.params == {"alpha": "0.5"}
    assert got.data.metrics == {"rmse": 0.25}


def test_logging_to_another_processes_run_by_id(tracking_uri: str) -> None:
    c = client(tracking_uri)
    run = c.create_run("0")
    mltrack.log_metric("external", 9.0, run_id=run.info.run_id)
    mltrack.flush()
    assert c.get_run(run.info.run_id).data.metrics == {"external": 9.0}


def test_mlflow_info_lines_stay_out_of_the_users_output_unless_debugging(tmp_path: Path) -> None:
    code = "import mltrack\nwith mltrack.start_run('quiet'):\n    mltrack.log_metric('a', 1.0)\n"
    env = {"MLTRACK_TRACKING_URI": f"sqlite:///{tmp_path / 'fresh.db'}"}
    quiet = run_python(code, env=env, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "Creating initial MLflow database tables" not in quiet.stderr
    loud = run_python(
        code, env={**env, "MLTRACK_TRACKING_URI": f"sqlite:///{tmp_path / 'other.db'}", "MLTRACK_DEBUG": "1"}
    )
    assert "Creating initial MLflow database tables" in loud.stderr


def test_an_unreachable_tracking_server_fails_start_run_in_seconds_with_one_line() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(
        mltrack.StoreError, match=f"cannot reach the tracking server at http://127.0.0.1:{port}"
    ) as info:
        mltrack.start_run(tracking_uri=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert info.value.hint and "MLTRACK_TRACKING_URI" in info.value.hint
    assert mltrack.active_run() is None
