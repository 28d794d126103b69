"""Crash safety with real processes and real signals: nothing a call accepted is lost.

A child process logs 10,000 points and writes how many of its calls have returned into
a shared counter file; the test kills it, replays the spool and compares the store
with that counter.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import NOTHING_DELIVERED_BEFORE_KILL, run_cli

import mltrack
from mltrack.storage.spool import FRAME

CHILD = """
import mmap, os, struct, sys, time
import mltrack
counter_path, mode, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(counter_path, os.O_RDWR)
counter = mmap.mmap(fd, 8)
run = mltrack.start_run("crash-child")
mltrack.log_param("mode", mode)
print(run.run_id, flush=True)
for i in range(total):
    mltrack.log_metric("loss", 1.0 / (i + 1), step=i)
    struct.pack_into("<q", counter, 0, i + 1)
print("logged", flush=True)
time.sleep(120)
"""


class Child:
    def __init__(self, tmp_path: Path, mode: str, total: int = 10_000, env: dict[str, str] | None = None) -> None:
        self.counter_path = tmp_path / f"counter-{mode}"
        self.counter_path.write_bytes(b"\0" * 8)
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(self.counter_path), mode, str(total)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdout is not None
        self.run_id = self.process.stdout.readline().strip()
        assert self.run_id, self.process.stderr.read() if self.process.stderr else ""

    def returned(self) -> int:
        with open(self.counter_path, "rb") as fh:
            return int(struct.unpack("<q", fh.read(8))[0])

    def wait_for_calls(self, at_least: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.returned() < at_least:
            assert time.monotonic() < deadline, "child did not log in time"
            time.sleep(0.001)

    def wait_logged(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "logged"

    def kill(self, sig: int) -> int:
        self.process.send_signal(sig)
        self.process.communicate(timeout=120)
        return self.process.returncode


def stored_steps(uri: str, run_id: str) -> list[int]:
    return sorted(m.step for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "loss"))


def sync() -> list[dict[str, Any]]:
    result = run_cli("sync", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("["), (result.stdout, result.stderr)
    return list(json.loads(result.stdout))


@pytest.mark.parametrize("when", ["mid-loop", "after-loop"])
def test_sigkill_loses_nothing_that_a_call_returned_from(sqlite_uri: str, tmp_path: Path, when: str) -> None:
    child = Child(tmp_path, when)
    if when == "mid-loop":
        child.wait_for_calls(5_000)
    else:
        child.wait_logged()
    assert child.kill(signal.SIGKILL) == -signal.SIGKILL
    returned = child.returned()
    reports = sync()
    assert [r["run_id"] for r in reports] == [child.run_id]
    assert reports[0]["status_set"] == "KILLED"
    steps = stored_steps(sqlite_uri, child.run_id)
    # every call that returned is there; at most the one in flight at the kill as well
    assert steps[:returned] == list(range(returned))
    assert returned <= len(steps) <= returned + 1
    run = mlflow.MlflowClient(sqlite_uri).get_run(child.run_id)
    assert run.info.status == "KILLED"
    assert run.data.params == {"mode": when}
    assert run.data.tags["mltrack.killed.detected_by"] == "mltrack sync"
    assert "stopped without ending the run" in run.data.tags["mltrack.killed.reason"]
    assert run.data.tags["mltrack.killed.detected_at"]


def test_sigterm_mid_loop_loses_nothing_and_marks_killed(sqlite_uri: str, tmp_path: Path) -> None:
    child = Child(tmp_path, "sigterm")
    child.wait_for_calls(5_000)
    assert child.kill(signal.SIGTERM) == 128 + signal.SIGTERM
    returned = child.returned()
    assert sync() == []  # a SIGTERM drains: nothing is left to replay
    steps = stored_steps(sqlite_uri, child.run_id)
    assert steps[:returned] == list(range(returned))
    assert returned <= len(steps) <= returned + 1
    assert mlflow.MlflowClient(sqlite_uri).get_run(child.run_id).info.status == "KILLED"


def test_the_next_process_on_the_store_replays_what_a_dead_one_left(sqlite_uri: str, tmp_path: Path) -> None:
    child = Child(tmp_path, "next")
    child.wait_logged()
    child.kill(signal.SIGKILL)
    with mltrack.start_run("the-next-one"):
        pass
    assert stored_steps(sqlite_uri, child.run_id) == list(range(10_000))
    run = mlflow.MlflowClient(sqlite_uri).get_run(child.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["mltrack.killed.detected_by"].startswith("replay by process")
    assert sync() == []


def test_replaying_twice_adds_no_duplicates(sqlite_uri: str, tmp_path: Path) -> None:
    # both replays must send every point
    child = Child(tmp_path, "twice", env=NOTHING_DELIVERED_BEFORE_KILL)
    child.wait_logged()
    child.kill(signal.SIGKILL)
    spool = tmp_path / ".mltrack" / "spool"
    copy = tmp_path / "spool-copy"
    shutil.copytree(spool, copy)
    assert sync()[0]["metrics"] == 10_000
    shutil.rmtree(spool, ignore_errors=True)
    shutil.copytree(copy, spool)
    assert sync()[0]["metrics"] == 10_000  # sent again ...
    assert stored_steps(sqlite_uri, child.run_id) == list(range(10_000))  # ... and stored once


def test_truncated_spool_replays_the_good_records_and_reports_the_bad_one(sqlite_uri: str, tmp_path: Path) -> None:
    child = Child(tmp_path, "truncated", total=100)
    child.wait_logged()
    child.kill(signal.SIGKILL)
    (log,) = (tmp_path / ".mltrack" / "spool").glob("*/*/log")
    payload = json.dumps({"t": ["late", "tag"]}).encode()
    with open(log, "ab") as fh:  # a record cut short by the crash
        fh.write(FRAME.pack(len(payload), 0) + payload[:5])
    (report,) = sync()
    assert report["metrics"] == 100
    assert report["params"] == 1
    assert any("truncated record" in problem for problem in report["problems"])
    assert stored_steps(sqlite_uri, child.run_id) == list(range(100))


def test_many_threads_logging_to_one_run_lose_nothing(sqlite_uri: str) -> None:
    with mltrack.start_run() as run:

        def work(worker: int) -> None:
            for i in range(2_000):
                mltrack.log_metric(f"w{worker}", float(i), step=i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    client = mlflow.MlflowClient(sqlite_uri)
    for worker in range(8):
        steps = sorted(m.step for m in client.get_metric_history(run.run_id, f"w{worker}"))
        assert steps == list(range(2_000))


RANK = """
import sys, mltrack
run_id, rank = sys.argv[1], int(sys.argv[2])
with mltrack.start_run(run_id=run_id):
    for i in range(3_000):
        mltrack.log_metric("loss", float(rank), step=rank * 3_000 + i)
"""


def test_several_processes_logging_to_one_run_lose_nothing(sqlite_uri: str) -> None:
    run = mlflow.MlflowClient(sqlite_uri).create_run("0")
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", RANK, run.info.run_id, str(rank)],
            env=dict(os.environ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(3)
    ]
    for rank in ranks:
        _, err = rank.communicate(timeout=180)
        assert rank.returncode == 0, err
    assert stored_steps(sqlite_uri, run.info.run_id) == list(range(9_000))


@pytest.mark.slow
@pytest.mark.server
def test_end_run_during_an_outage_keeps_the_rest_in_the_spool(mlflow_server: str, monkeypatch: Any) -> None:
    from mltrack.testing.servers import TcpProxy

    # the session's server behind a proxy that is cut: an outage without restarting a server
    with TcpProxy(int(mlflow_server.rsplit(":", 1)[1])) as proxy:
        monkeypatch.setenv("MLTRACK_TRACKING_URI", proxy.url)
        # 10 s: a writer process's cycle against a server going down can take seconds on a loaded machine
        mltrack.configure(write_retries=1, retry_backoff_s=0.05, end_run_timeout_s=10)
        run = mltrack.start_run("outage-end")
        mltrack.log_metric("loss", 0.0, step=0)
        mltrack.flush()
        proxy.cut()
        for step in range(1, 500):
            mltrack.log_metric("loss", 1.0 / step, step=step)
        started = time.monotonic()
        with pytest.raises(mltrack.LoggingFailedError, match="kept in the spool") as info:
            mltrack.end_run()
        assert time.monotonic() - started < 30  # bounded by the timeout, no endless hang
        assert "mltrack sync" in str(info.value)
        mltrack.tracking.runs._writer.forget_run(run.run_id)  # type: ignore[union-attr]  # as if the process had exited
        proxy.restore()
        reports = sync()
        assert [r["run_id"] for r in reports] == [run.run_id]
        assert reports[0]["status_set"] == "FINISHED"
    client = mlflow.MlflowClient(mlflow_server)
    assert sorted(m.step for m in client.get_metric_history(run.run_id, "loss")) == list(range(500))
    assert client.get_run(run.run_id).info.status == "FINISHED"


@pytest.mark.slow
@pytest.mark.server
def test_tracking_server_on_postgresql_down_for_30s_mid_run_loses_nothing(mlflow_server: str, monkeypatch: Any) -> None:
    from mltrack.testing.servers import TcpProxy

    # the session's server on PostgreSQL behind a proxy that is cut for 31 s
    with TcpProxy(int(mlflow_server.rsplit(":", 1)[1])) as proxy:
        monkeypatch.setenv("MLTRACK_TRACKING_URI", proxy.url)
        with mltrack.start_run("long-outage") as run:
            step = 0
            for _ in range(500):
                mltrack.log_metric("loss", 1.0, step=step)
                step += 1
            mltrack.flush()
            proxy.cut()
            down_until = time.monotonic() + 31
            while time.monotonic() < down_until:  # keep training while the server is down
                for _ in range(100):
                    mltrack.log_metric("loss", 1.0 / (step + 1), step=step)
                    step += 1
                time.sleep(0.1)
            proxy.restore()
    steps = sorted(m.step for m in mlflow.MlflowClient(mlflow_server).get_metric_history(run.run_id, "loss"))
    assert steps == list(range(step))
    assert mlflow.MlflowClient(mlflow_server).get_run(run.run_id).info.status == "FINISHED"


def test_a_forked_worker_logs_into_the_parents_run_without_clobbering_it(sqlite_uri: str) -> None:
    import multiprocessing

    def worker(offset: int) -> None:
        for i in range(1_000):
            mltrack.log_metric("worker", float(i), step=offset + i)

    context = multiprocessing.get_context("fork")
    with mltrack.start_run() as run:
        for i in range(1_000):
            mltrack.log_metric("parent", float(i), step=i)
        children = [context.Process(target=worker, args=(n * 1_000,)) for n in range(2)]
        for child in children:
            child.start()
        for i in range(1_000, 2_000):
            mltrack.log_metric("parent", float(i), step=i)
        for child in children:
            child.join(60)
            assert child.exitcode == 0
    client = mlflow.MlflowClient(sqlite_uri)
    assert sorted(m.step for m in client.get_metric_history(run.run_id, "parent")) == list(range(2_000))
    # each worker drained its own writer before exiting: nothing is left to replay
    assert sorted(m.step for m in client.get_metric_history(run.run_id, "worker")) == list(range(2_000))
    assert sync() == []
    assert client.get_run(run.run_id).info.status == "FINISHED"


def test_logging_by_run_id_drains_at_exit_and_leaves_no_spool(sqlite_uri: str) -> None:
    run = mlflow.MlflowClient(sqlite_uri).create_run("0")
    code = (
        "import sys, mltrack\n"
        "for i in range(500):\n"
        "    mltrack.log_metric('loss', float(i), step=i, run_id=sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, run.info.run_id], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert stored_steps(sqlite_uri, run.info.run_id) == list(range(500))
    assert sync() == []  # nothing left behind to replay ...
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.info.run_id).info.status == "RUNNING"  # ... or to mark
