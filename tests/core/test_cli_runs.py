"""``mltrack runs list|show|delete|restore`` and ``mltrack gc``: short ids, unique prefixes, names.

Every command runs as the installed ``mltrack`` executable on a real sqlite store; two tests go
through a real ``mlflow server`` on PostgreSQL. Runs that share an id prefix are made by renaming
real runs' ids in the sqlite file (MLflow draws ids at random): the one seam of these tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

import mltrack
from mltrack.errors import InvalidInputError
from mltrack.tracking.run_lifecycle import parse_age

NARROW = {"COLUMNS": "80"}


@pytest.fixture
def runs(sqlite_uri: str) -> dict[str, str]:
    """Runs ``good`` (loss 0.2) and ``bad`` (loss 0.9) in experiment ``churn-baseline``, ``other``
    (loss 0.1) in ``exp-b``: run name -> run id."""
    found = {}
    for experiment, losses in {"churn-baseline": {"good": 0.2, "bad": 0.9}, "exp-b": {"other": 0.1}}.items():
        mltrack.set_experiment(experiment)
        for name, loss in losses.items():
            with mltrack.start_run(run_name=name) as run:
                mltrack.log_metric("loss", loss)
                mltrack.log_metric("final_train_loss", 0.0097123456)
            found[name] = run.run_id
    return found


def _rename_run_id(sqlite_uri: str, old: str, new: str) -> None:
    """Give run ``old`` the id ``new`` in every table that refers to it."""
    with sqlite3.connect(sqlite_uri.removeprefix("sqlite:///")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column in {"run_uuid", "run_id"} & columns:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))


def _ok(*args: str, input: str | None = None) -> str:
    result = run_cli(*args, env=NARROW) if input is None else _run_with_input(args, input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run_with_input(args: tuple[str, ...], input: str) -> subprocess.CompletedProcess[str]:
    """``run_cli`` with ``input`` on stdin (an answer to a confirmation prompt)."""
    mltrack_cli = Path(sys.executable).parent / "mltrack"
    return subprocess.run(
        [str(mltrack_cli), *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **NARROW},
        timeout=120,
    )


def _stage(run_id: str) -> str | None:
    """The run's lifecycle stage read straight from the store (None once it is gone)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_run(run_id).info.lifecycle_stage)
    except MlflowException:
        return None


# -- runs list ----------------------------------------------------------------------------------


def test_runs_list_at_80_columns_shows_short_ids_names_experiment_names_and_metrics_on_whole_lines(
    runs: dict[str, str],
) -> None:
    out = _ok("runs", "list")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name, run_id in runs.items():
        row = next(line for line in lines if line.startswith(run_id[:8]))
        assert name in row
        assert run_id not in out  # only the short form
    assert "churn-baseline" in out and "exp-b" in out
    assert "loss=0.2" in out and "=0.009712" in out  # 4 significant digits; a long name may be shortened


def test_runs_list_of_one_experiment_names_it_once_above_the_table(runs: dict[str, str]) -> None:
    out = _ok("runs", "list", "--experiment", "churn-baseline", "--metric", "loss")
    assert out.splitlines()[0] == "experiment churn-baseline"
    assert "exp-b" not in out and "final_train_loss" not in out


def test_runs_list_json_keeps_full_ids_and_gives_experiment_names(runs: dict[str, str]) -> None:
    rows = json.loads(_ok("runs", "list", "--json"))
    assert {row["name"]: (row["run_id"], row["experiment"]) for row in rows} == {
        "good": (runs["good"], "churn-baseline"),
        "bad": (runs["bad"], "churn-baseline"),
        "other": (runs["other"], "exp-b"),
    }


# -- run id prefixes ----------------------------------------------------------------------------


def test_runs_show_accepts_the_short_id_and_any_unique_prefix(runs: dict[str, str]) -> None:
    for prefix in (runs["good"][:8], runs["good"][:4].upper()):
        shown = json.loads(_ok("runs", "show", prefix, "--json"))
        assert shown["run_id"] == runs["good"]
        assert shown["experiment"] == "churn-baseline"


def test_an_ambiguous_prefix_is_one_line_listing_the_candidates(sqlite_uri: str, runs: dict[str, str]) -> None:
    _rename_run_id(sqlite_uri, runs["good"], "abcd1111" + runs["good"][8:])
    _rename_run_id(sqlite_uri, runs["bad"], "abcd2222" + runs["bad"][8:])
    result = run_cli("runs", "show", "abcd")
    assert result.returncode == 1 and result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error == "Error: run id 'abcd' matches several runs: abcd1111 (good), abcd2222 (bad)" or error == (
        "Error: run id 'abcd' matches several runs: abcd2222 (bad), abcd1111 (good)"
    )
    assert hint == "Hint: give more characters of the id"
    assert json.loads(_ok("runs", "show", "abcd2", "--json"))["name"] == "bad"


def test_an_unknown_or_too_short_prefix_is_one_line_and_a_hint(sqlite_uri: str, runs: dict[str, str]) -> None:
    unused = next(c for c in "0123456789abcdef" if not any(r.startswith(c * 4) for r in runs.values())) * 4
    result = run_cli("runs", "show", unused)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: no run id starts with '{unused}' in {sqlite_uri}",
        "Hint: list runs with `mltrack runs list` (deleted ones: `mltrack gc --dry-run`)",
    ]
    short = run_cli("runs", "show", runs["good"][:3])
    assert short.returncode == 1
    assert short.stderr.splitlines()[1] == "Hint: give at least 4 characters of the id (`mltrack runs list` shows 8)"


def test_artifacts_list_takes_a_run_id_prefix(runs: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    _ok("artifacts", "upload", runs["good"][:8], str(tmp_path / "notes.txt"))
    listed = json.loads(_ok("artifacts", "list", runs["good"][:6], "--json"))
    assert [row["path"] for row in listed] == ["notes.txt"]


# -- delete, restore, gc ------------------------------------------------------------------------


def test_delete_hides_runs_and_restore_brings_them_back_with_one_line_each(runs: dict[str, str]) -> None:
    good, bad = runs["good"][:8], runs["bad"][:8]
    assert _ok("runs", "delete", good, bad).splitlines() == [
        f"deleted run {good} (good) in experiment 'churn-baseline'",
        f"deleted run {bad} (bad) in experiment 'churn-baseline'",
    ]
    assert (_stage(runs["good"]), _stage(runs["bad"]), _stage(runs["other"])) == ("deleted", "deleted", "active")
    assert _ok("runs", "delete", good) == f"run {good} (good) in experiment 'churn-baseline': already deleted\n"
    assert _ok("runs", "restore", good) == f"restored run {good} (good) in experiment 'churn-baseline'\n"
    assert _stage(runs["good"]) == "active"


def test_gc_removes_deleted_runs_and_their_artifacts_once_confirmed(runs: dict[str, str], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    (tmp_path / "weights.bin").write_bytes(b"x" * 10)
    MlflowClient().log_artifact(runs["bad"], str(tmp_path / "weights.bin"))
    artifact_dir = Path(mltrack.get_run(runs["bad"]).info.artifact_uri.removeprefix("file://"))
    assert (artifact_dir / "weights.bin").exists()
    MlflowClient().delete_run(runs["bad"])

    refused = _run_with_input(("gc",), "n\n")
    assert refused.returncode == 1
    assert _stage(runs["bad"]) == "deleted"

    out = _ok("gc", input="y\n")
    assert out.splitlines() == [
        f"  {runs['bad'][:8]}  bad  (churn-baseline)",
        "Remove these 1 run(s) and their artifacts for good? [y/N]: "
        f"removed run {runs['bad'][:8]} (bad) in experiment 'churn-baseline'",
    ]
    assert not artifact_dir.exists()
    assert (_stage(runs["bad"]), _stage(runs["good"]), _stage(runs["other"])) == (None, "active", "active")
    assert _ok("gc", "--yes") == "no deleted runs to remove\n"


def test_gc_older_than_and_run_ids_remove_only_what_they_name(runs: dict[str, str]) -> None:
    from mlflow import MlflowClient

    MlflowClient().delete_run(runs["good"])
    MlflowClient().delete_run(runs["bad"])
    assert _ok("gc", "--older-than", "1d", "--yes") == "no deleted runs to remove (deleted more than 1d ago)\n"
    dry = _ok("gc", "--dry-run")
    assert dry.splitlines()[-1] == "2 deleted run(s) would be removed for good (dry run)"
    active = run_cli("gc", "--run-ids", runs["other"][:8], "--yes")
    assert active.returncode == 1
    assert active.stderr.splitlines()[1] == f"Hint: delete it first: mltrack runs delete {runs['other'][:8]}"
    assert "removed run" in _ok("gc", "--run-ids", runs["good"][:8], "--yes")
    assert (_stage(runs["good"]), _stage(runs["bad"])) == (None, "deleted")


def test_an_age_is_days_hours_minutes_and_seconds_as_mlflow_gc_reads_it() -> None:
    assert parse_age("30d") == 30 * 86_400_000
    assert parse_age("1d12h") == 36 * 3_600_000
    assert parse_age("1.5h30s") == 5_430_000
    for wrong in ("", "3 weeks", "10", "1h1d"):
        with pytest.raises(InvalidInputError, match="is not an age"):
            parse_age(wrong)


# -- through a tracking server ------------------------------------------------------------------


@pytest.mark.server
def test_through_a_server_prefixes_resolve_and_gc_uses_the_servers_database(
    mlflow_server: str, postgres: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRACK_TRACKING_URI", mlflow_server)
    mltrack.set_experiment("cli-runs-server")
    with mltrack.start_run(run_name="to-remove") as run:
        mltrack.log_metric("loss", 0.5)
    short = run.run_id[:8]
    assert json.loads(_ok("runs", "show", short, "--json"))["run_id"] == run.run_id
    assert _ok("runs", "delete", short) == f"deleted run {short} (to-remove) in experiment 'cli-runs-server'\n"

    refused = run_cli("gc", "--run-ids", short, "--yes")
    assert refused.returncode == 1
    assert "MLflow's REST API has no permanent delete" in refused.stderr
    assert "--backend-store-uri" in refused.stderr.splitlines()[1]

    database = postgres.uri  # type: ignore[attr-defined]
    out = _ok("gc", "--backend-store-uri", database, "--run-ids", short, "--yes")
    assert f"removed run {short} (to-remove) in experiment 'cli-runs-server'" in out
    assert run_cli("runs", "show", run.run_id).returncode == 1
