"""Queued data survives the end of the process: normal exit, uncaught error and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import mlflow
import pytest

LOG_10K = (
    "import mltrack, sys\n"
    "run = mltrack.start_run('exiting')\n"
    "print(run.run_id, flush=True)\n"
    "for i in range(10_000):\n"
    "    mltrack.log_metric('loss', 1.0 / (i + 1), step=i)\n"
)


def _child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )


def _history(uri: str, run_id: str) -> tuple[str, list[int]]:
    client = mlflow.MlflowClient(uri)
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    return client.get_run(run_id).info.status, steps


def test_normal_exit_without_end_run_drains_everything(sqlite_uri: str) -> None:
    child = _child(LOG_10K)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    status, steps = _history(sqlite_uri, out.split()[0])
    assert status == "FINISHED"
    assert steps == list(range(10_000))


def test_uncaught_exception_marks_the_run_failed(sqlite_uri: str) -> None:
    child = _child(LOG_10K + "raise RuntimeError('crash')\n")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 1 and "crash" in err
    status, steps = _history(sqlite_uri, out.split()[0])
    assert status == "FAILED"
    assert steps == list(range(10_000))


@pytest.mark.parametrize("inside_with", [False, True], ids=["plain", "with-block"])
def test_sigterm_drains_everything_and_marks_killed(sqlite_uri: str, inside_with: bool) -> None:
    if inside_with:
        code = (
            "import mltrack, time\n"
            "with mltrack.start_run('exiting') as run:\n"
            "    print(run.run_id, flush=True)\n"
            "    for i in range(10_000):\n"
            "        mltrack.log_metric('loss', 1.0 / (i + 1), step=i)\n"
            "    print('logged', flush=True)\n"
            "    time.sleep(60)\n"
        )
    else:
        code = LOG_10K + "print('logged', flush=True)\nimport time\ntime.sleep(60)\n"
    child = _child(code)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert child.stdout.readline().strip() == "logged"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM, err
    status, steps = _history(sqlite_uri, run_id)
    assert status == "KILLED"
    assert steps == list(range(10_000))
