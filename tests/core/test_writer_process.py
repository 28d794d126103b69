"""The writer process (``writer = "process"``): store writes outside the training process.

Each test runs its training process in a fresh interpreter (the writer is per process tree),
against a real sqlite store, and reads the store back with plain MLflow.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import run_cli, run_python

PROCESS = {"MLTRACK_WRITER": "process"}


def _history(uri: str, run_id: str, key: str = "loss") -> list[float]:
    return [m.value for m in mlflow.MlflowClient(uri).get_metric_history(run_id, key)]


def _last_json(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return out


def test_params_tags_and_metrics_reach_the_store_and_get_run_reads_them(sqlite_uri: str) -> None:
    code = (
        "import json, os, mltrack\n"
        "from mltrack.tracking import runs\n"
        "run = mltrack.start_run('proc')\n"
        "mltrack.log_param('lr', 0.1)\n"
        "mltrack.set_tag('phase', 'train')\n"
        "for i in range(3000):\n"
        "    mltrack.log_metric('loss', float(i), step=i)\n"
        "seen = mltrack.get_run(run.run_id)\n"  # read-your-writes across processes
        "pid = runs.get_writer().writer_pid\n"
        "mltrack.end_run()\n"
        "print(json.dumps({'run_id': run.run_id, 'latest': seen.data.metrics['loss'], 'params': seen.data.params,\n"
        "                  'tag': seen.data.tags.get('phase'), 'writer': pid, 'me': os.getpid()}))\n"
    )
    result = run_python(code, env=PROCESS, timeout=180)
    assert result.returncode == 0, result.stderr
    out = _last_json(result.stdout)
    assert out["latest"] == 2999.0
    assert out["params"] == {"lr": "0.1"}
    assert out["tag"] == "train"
    assert out["writer"] not in (0, out["me"])
    assert _history(sqlite_uri, out["run_id"]) == [float(i) for i in range(3000)]
    assert mlflow.MlflowClient(sqlite_uri).get_run(out["run_id"]).info.status == "FINISHED"


def test_a_killed_writer_process_is_replaced_and_nothing_is_lost(sqlite_uri: str) -> None:
    code = (
        "import json, os, signal, time, mltrack\n"
        "from mltrack.tracking import runs\n"
        "run = mltrack.start_run('kill-writer')\n"
        "for i in range(20_000):\n"
        "    mltrack.log_metric('loss', float(i), step=i)\n"
        "    if i == 5_000:\n"
        "        first = runs.get_writer().writer_pid\n"
        "        os.kill(first, signal.SIGKILL)\n"  # mid-run, while it delivers
        "mltrack.end_run()\n"
        "print(json.dumps({'run_id': run.run_id, 'first': first, 'second': runs.get_writer().writer_pid}))\n"
    )
    result = run_python(code, env=PROCESS, timeout=180)
    assert result.returncode == 0, result.stderr
    out = _last_json(result.stdout)
    assert out["second"] != out["first"]
    assert _history(sqlite_uri, out["run_id"]) == [float(i) for i in range(20_000)]
    assert mlflow.MlflowClient(sqlite_uri).get_run(out["run_id"]).info.status == "FINISHED"


def test_an_idle_writer_exits_and_the_next_run_starts_a_new_one(sqlite_uri: str) -> None:
    code = (
        "import json, os, time, mltrack\n"
        "from mltrack.tracking import runs\n"
        "ids, writers = [], []\n"
        "for name in ('first', 'second'):\n"
        "    with mltrack.start_run(name) as run:\n"
        "        for i in range(500):\n"
        "            mltrack.log_metric('loss', float(i), step=i)\n"
        "    ids.append(run.run_id)\n"
        "    writers.append(runs.get_writer().writer_pid)\n"
        "    if name == 'first':\n"
        "        deadline = time.monotonic() + 30\n"
        "        while time.monotonic() < deadline:\n"
        "            try:\n"
        "                os.kill(writers[0], 0)\n"
        "            except ProcessLookupError:\n"
        "                break\n"
        "            os.waitpid(writers[0], os.WNOHANG)\n"  # reap it: a zombie still answers kill(0)
        "            time.sleep(0.1)\n"
        "print(json.dumps({'ids': ids, 'writers': writers}))\n"
    )
    result = run_python(code, env={**PROCESS, "MLTRACK_WRITER_IDLE_EXIT_S": "1"}, timeout=180)
    assert result.returncode == 0, result.stderr
    out = _last_json(result.stdout)
    first, second = out["writers"]
    assert first != second
    for run_id in out["ids"]:
        assert _history(sqlite_uri, run_id) == [float(i) for i in range(500)]


def test_a_run_without_a_spool_is_delivered_from_the_training_process(sqlite_uri: str) -> None:
    code = (
        "import json, mltrack\n"
        "ids = []\n"
        "for spool in (True, False):\n"  # spool = false set after the writer process started
        "    mltrack.configure(spool=spool)\n"
        "    with mltrack.start_run(f'spool-{spool}') as run:\n"
        "        mltrack.log_param('spool', spool)\n"
        "        for i in range(300):\n"
        "            mltrack.log_metric('loss', float(i), step=i)\n"
        "    ids.append(run.run_id)\n"
        "print(json.dumps({'ids': ids}))\n"
    )
    result = run_python(code, env=PROCESS, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "dropped" not in result.stderr
    for run_id in _last_json(result.stdout)["ids"]:
        assert _history(sqlite_uri, run_id) == [float(i) for i in range(300)]
        assert mlflow.MlflowClient(sqlite_uri).get_run(run_id).info.status == "FINISHED"


def test_the_writer_process_is_the_default(sqlite_uri: str) -> None:
    code = (
        "import json, mltrack\n"
        "from mltrack.extend import get_settings\n"
        "with mltrack.start_run() as run:\n"
        "    mltrack.log_metric('loss', 1.0, step=0)\n"
        "from mltrack.tracking import runs\n"
        "print(json.dumps({'writer': get_settings().writer, 'pid': runs.get_writer().writer_pid}))\n"
    )
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr
    out = _last_json(result.stdout)
    assert out["writer"] == "process" and out["pid"] > 0


def test_where_no_writer_process_can_start_the_thread_writes_and_says_so_once(sqlite_uri: str) -> None:
    # the narrow seam: an embedded interpreter whose sys.executable is not a Python
    code = (
        "import json, sys, mltrack\n"
        "sys.executable = '/bin/false'\n"
        "ids = []\n"
        "for name in ('a', 'b'):\n"
        "    with mltrack.start_run(name) as run:\n"
        "        for i in range(50):\n"
        "            mltrack.log_metric('loss', float(i), step=i)\n"
        "    ids.append(run.run_id)\n"
        "print(json.dumps({'ids': ids}))\n"
    )
    result = run_python(code, env=PROCESS, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("writes to the store from a thread instead") == 1, result.stderr
    assert "MLTRACK_WRITER=thread" in result.stderr
    for run_id in _last_json(result.stdout)["ids"]:
        assert _history(sqlite_uri, run_id) == [float(i) for i in range(50)]


def test_a_forked_workers_points_are_delivered_by_the_same_writer(sqlite_uri: str) -> None:
    code = (
        "import json, os, multiprocessing as mp, mltrack\n"
        "from mltrack.tracking import runs\n"
        "def work(n):\n"
        "    for i in range(n):\n"
        "        mltrack.log_metric('worker', float(i), step=i)\n"
        "    return runs.get_writer().writer_pid\n"
        "run = mltrack.start_run('fork')\n"
        "mltrack.log_metric('loss', 1.0)\n"
        "with mp.get_context('fork').Pool(1) as pool:\n"
        "    child_writer = pool.apply(work, (2000,))\n"
        "mltrack.end_run()\n"
        "print(json.dumps({'run_id': run.run_id, 'child': child_writer, 'parent': runs.get_writer().writer_pid}))\n"
    )
    result = run_python(code, env=PROCESS, timeout=180)
    assert result.returncode == 0, result.stderr
    out = _last_json(result.stdout)
    assert out["child"] == out["parent"]
    assert sorted(_history(sqlite_uri, out["run_id"], "worker")) == [float(i) for i in range(2000)]


def test_a_killed_training_process_is_let_go_by_its_writer_and_sync_delivers_it(
    sqlite_uri: str, tmp_path: Path
) -> None:
    code = (
        "import os, signal, mltrack\n"
        "from mltrack.tracking import runs\n"
        "run = mltrack.start_run('killed')\n"
        "for i in range(10_000):\n"
        "    mltrack.log_metric('loss', float(i), step=i)\n"
        "print(run.run_id, runs.get_writer().writer_pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **PROCESS},
        timeout=180,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    run_id, writer_pid = process.stdout.split()
    # sync runs at once, possibly while the writer is still delivering: they take turns
    synced = run_cli("sync", "--json")
    assert synced.returncode == 0, synced.stderr
    reports = json.loads(synced.stdout)
    assert [r["run_id"] for r in reports] == [run_id]
    assert reports[0]["status_set"] == "KILLED"
    client = mlflow.MlflowClient(sqlite_uri)
    assert client.get_run(run_id).info.status == "KILLED"
    assert _history(sqlite_uri, run_id) == [float(i) for i in range(10_000)]  # each point once
    deadline = time.monotonic() + 30
    while _alive(int(writer_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(int(writer_pid)), "the writer process outlived its work"
    assert not any((tmp_path / ".mltrack" / "spool").glob("*/*"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the resident set")
def test_the_training_process_memory_stays_bounded_during_a_long_outage(sqlite_uri: str) -> None:
    # A real outage of a real store: this test holds sqlite's write lock, so every write
    # of the writer process fails with "database is locked" (a transient error) and the
    # 1M points stay in the spool.
    database = sqlite_uri.removeprefix("sqlite:///")
    code = (
        "import os, sys, mltrack\n"
        "from mltrack.tracking import runs\n"
        "def rss(pid):\n"
        "    return int(open(f'/proc/{pid}/statm').read().split()[1]) * 4096\n"
        "run = mltrack.start_run('outage')\n"
        "for i in range(20_000):\n"
        "    mltrack.log_metric('warmup', 1.0, step=i)\n"
        "mltrack.flush()\n"
        "writer = runs.get_writer().writer_pid\n"
        "print('locked?', flush=True)\n"
        "sys.stdin.readline()\n"
        "base, writer_base = rss(os.getpid()), rss(writer)\n"
        "for i in range(1_000_000):\n"
        "    mltrack.log_metric('loss', 1.0, step=i)\n"
        "print((rss(os.getpid()) - base) / 2**20, (rss(writer) - writer_base) / 2**20, flush=True)\n"
        "os._exit(0)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **PROCESS, "MLTRACK_WRITE_RETRIES": "0"},
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "locked?", child.stderr.read() if child.stderr else ""
    lock = sqlite3.connect(database, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        child.wait(timeout=300)
    finally:
        lock.rollback()
        lock.close()
    assert child.returncode == 0, child.stderr.read() if child.stderr else ""
    growth_mb, writer_growth_mb = (float(v) for v in line.split())
    assert growth_mb <= 32, f"the training process grew by {growth_mb:.0f} MB for a 1M-point backlog"
    assert writer_growth_mb <= 64, f"the writer process grew by {writer_growth_mb:.0f} MB"


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_points_of_pool_workers_the_pool_terminates_reach_the_run(sqlite_uri: str, writer: str) -> None:
    # `with Pool() as pool:` SIGTERMs its workers on the way out, possibly mid-drain:
    # the run's owner (or the writer process) delivers what they left in their spools.
    code = (
        "import json, multiprocessing as mp, mltrack\n"
        "def work(n):\n"
        "    for i in range(n):\n"
        "        mltrack.log_metric('worker', float(i), step=i)\n"
        "run = mltrack.start_run('pool')\n"
        "for _ in range(3):\n"
        "    with mp.get_context('fork').Pool(1) as pool:\n"
        "        pool.apply(work, (1000,))\n"
        "mltrack.end_run()\n"
        "print(json.dumps({'run_id': run.run_id}))\n"
    )
    result = run_python(code, env={"MLTRACK_WRITER": writer}, timeout=180)
    assert result.returncode == 0, result.stderr
    run_id = _last_json(result.stdout)["run_id"]
    # three workers logged steps 0..999 each: every point once (a resent one is the same row)
    assert sorted(_history(sqlite_uri, run_id, "worker")) == sorted(float(i) for i in range(1000) for _ in range(3))
    assert mlflow.MlflowClient(sqlite_uri).get_run(run_id).info.status == "FINISHED"


def test_sync_says_which_spools_it_left_alone(sqlite_uri: str) -> None:
    code = (
        "import sys, time, mltrack\n"
        "mltrack.start_run()\n"
        "mltrack.log_metric('loss', 1.0, step=0)\n"
        "mltrack.flush()\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    live = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ready"
        result = run_cli("sync")
        assert result.returncode == 0, result.stderr
        said = " ".join(result.stdout.split())  # rich wraps at the terminal's width
        assert "nothing to sync" in said and "(1 spool(s) of running processes)" in said
    finally:
        live.kill()
        live.wait()
