"""Reliability of the logging path: refused records, full disks, damaged spools, the start window,
bounded memory and outages. Real stores and real processes; fakes only at a named seam."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import NOTHING_DELIVERED_BEFORE_KILL, run_cli, run_python

import mltrack
from mltrack.storage.records import Batch
from mltrack.storage.sinks import Sink
from mltrack.storage.spool import RunSpool, read_spool, spool_root
from mltrack.storage.writer import BackgroundWriter


def _sync(*args: str) -> tuple[int, list[dict[str, Any]]]:
    result = run_cli("sync", "--json", *args)
    assert result.stdout.startswith("["), (result.stdout, result.stderr)
    return result.returncode, list(json.loads(result.stdout))


def _data_dir() -> Path:
    return Path(os.environ["MLTRACK_DATA_DIR"])


# -- a record the store refuses never poisons anything else ------------------------------------------


def test_a_refused_record_is_quarantined_and_everything_else_of_the_run_is_stored(tracking_uri: str) -> None:
    client = mlflow.MlflowClient(tracking_uri)
    with pytest.warns(mltrack.RecordsRefusedWarning, match="1 record"), mltrack.start_run("poisoned") as run:
        # Set behind MLTrack's back, so MLTrack's own check cannot see the conflict: the store refuses it.
        client.log_param(run.run_id, "lr", "0.1")
        mltrack.log_params({"lr": 0.2, "batch": 32})
        mltrack.set_tag("team", "vision")
        for step in range(1_500):
            mltrack.log_metric("loss", 1.0 / (step + 1), step=step)
    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"lr": "0.1", "batch": "32"}
    assert stored.data.tags["team"] == "vision"
    assert "lr" in stored.data.tags["mltrack.refused"]
    assert len(client.get_metric_history(run.run_id, "loss")) == 1_500
    refused = [json.loads(line) for line in (_data_dir() / "quarantine" / run.run_id / "refused.jsonl").open()]
    assert [(r["kind"], r["record"]) for r in refused] == [("param", ["lr", "0.2"])]
    assert [a.path for a in client.list_artifacts(run.run_id, "mltrack")] == ["mltrack/refused.json"]


def test_a_refused_record_leaves_other_runs_reads_and_flushes_working(tracking_uri: str, tmp_path: Path) -> None:
    client = mlflow.MlflowClient(tracking_uri)
    experiment = f"poison-{tmp_path.name}-{time.time_ns()}"
    mltrack.set_experiment(experiment)
    with pytest.warns(mltrack.RecordsRefusedWarning), mltrack.start_run("poisoned") as bad:
        client.log_param(bad.run_id, "seed", "1")
        mltrack.log_param("seed", 2)
        mltrack.flush()  # the refusal is handled here: no error
    with mltrack.start_run("healthy") as good:
        mltrack.log_metric("acc", 0.9)
        mltrack.flush()
        assert mltrack.get_run(good.run_id).data.metrics == {"acc": 0.9}
    assert [r.info.run_name for r in mltrack.search_runs(experiment, order_by=["start_time ASC"])] == [
        "poisoned",
        "healthy",
    ]
    assert client.get_run(good.run_id).info.status == "FINISHED"


def test_sync_delivers_what_it_can_of_a_dead_process_and_reports_the_refused_record(sqlite_uri: str) -> None:
    code = (
        "import os, mlflow, mltrack\n"
        "run = mltrack.start_run('killed')\n"
        f"mlflow.MlflowClient({sqlite_uri!r}).log_param(run.run_id, 'lr', '0.1')\n"
        "mltrack.log_param('lr', 0.5)\n"
        "mltrack.log_param('epochs', 3)\n"
        "for i in range(300):\n"
        "    mltrack.log_metric('loss', float(i), step=i)\n"
        "print(run.run_id, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = run_python(code)
    assert result.returncode == -signal.SIGKILL, result.stderr
    run_id = result.stdout.split()[0]
    code_, reports = _sync()
    assert code_ == 0
    (report,) = reports
    assert report["refused"] == 1
    assert any("refused by the store" in p for p in report["problems"])
    client = mlflow.MlflowClient(sqlite_uri)
    stored = client.get_run(run_id)
    assert stored.data.params == {"lr": "0.1", "epochs": "3"}
    assert stored.info.status == "KILLED"
    assert len(client.get_metric_history(run_id, "loss")) == 300
    assert _sync() == (0, [])  # nothing is retried forever


def test_a_store_that_fails_without_answering_is_retried_not_quarantined() -> None:
    # Seam: the primary sink stands in for a store whose server returns HTTP 500 for everything.
    class Failing500(Sink):
        name = "mlflow"
        healthy = False

        def log_batch(self, batch: Batch) -> None:
            if not self.healthy:
                raise RuntimeError("HTTP 500 INTERNAL_ERROR")
            self.got = batch

        def probe(self, run_id: str) -> bool:
            return self.healthy

    sink = Failing500()
    writer = BackgroundWriter(flush_interval_s=0.01, retries=1, backoff_s=0, quarantine_dir=None)
    writer.open_run("r1", sink, "0", None)
    writer.put(("p", "r1", "lr", "0.1"))
    with pytest.raises(mltrack.LoggingFailedError, match="HTTP 500"):
        writer.flush(5)
    assert writer.refused("r1")[0] == []
    sink.healthy = True
    writer.flush(5)
    assert sink.got.params[0].key == "lr"
    writer.stop()


# -- the spool: full disks, short writes, damage ----------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 6 MB tmpfs (needs root, as in CI)."""
    folder = Path(tempfile.mkdtemp(prefix="mltrack-tmpfs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


FULL_DISK_CHILD = """
import os, sys, mltrack
disk = sys.argv[1]
filler = os.path.join(disk, "filler")

def fill(leave):
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "ab") as fh:
        fh.write(b"x" * max(0, free - leave))

run = mltrack.start_run("full-disk")
accepted, refused = [], 0
fill(1 << 20)  # room for the log, not for a 2 MiB segment
for step in range(200):
    try:
        mltrack.log_metric("loss", float(step), step=step)
        accepted.append(step)
    except mltrack.SpoolFullError as exc:
        refused += 1
        message = str(exc)
os.remove(filler)  # space comes back: logging works again
for step in range(200, 400):
    mltrack.log_metric("loss", float(step), step=step)
    accepted.append(step)
fill(0)
long_value = "0." + "1" * 5000  # more than the slack of the log file's last page
try:
    mltrack.log_param("lr", long_value)
    param_error = ""
except mltrack.SpoolFullError as exc:
    param_error = type(exc).__name__
os.remove(filler)
mltrack.log_param("lr", long_value)  # the retried call is stored
mltrack.end_run()
print(run.run_id, refused, param_error, len(accepted))
print(message)
"""


def _run_full_disk_child(small_disk: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FULL_DISK_CHILD, str(small_disk)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLTRACK_DATA_DIR": str(small_disk / "data")},
        timeout=120,
    )


def test_full_disk_raises_spool_full_error_naming_the_folder_and_loses_nothing_accepted(
    sqlite_uri: str, small_disk: Path
) -> None:
    result = _run_full_disk_child(small_disk)
    assert result.returncode == 0, result.stderr  # no SIGBUS (-7)
    first, message = result.stdout.strip().splitlines()[-2:]
    run_id, refused, param_error, _accepted = first.split()
    assert int(refused) == 200 and param_error == "SpoolFullError"
    assert str(small_disk / "data" / "spool") in message and "MB free" in message
    client = mlflow.MlflowClient(sqlite_uri)
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss")) == list(range(200, 400))
    assert client.get_run(run_id).data.params == {"lr": "0." + "1" * 5000}
    assert client.get_run(run_id).info.status == "FINISHED"


def test_no_room_for_the_spool_at_start_run_leaves_no_running_run(sqlite_uri: str, small_disk: Path) -> None:
    code = (
        "import os, sys, mltrack\n"
        "disk = sys.argv[1]\n"
        "st = os.statvfs(disk)\n"
        "open(os.path.join(disk, 'filler'), 'wb').write(b'x' * (st.f_bavail * st.f_frsize))\n"
        "try:\n"
        "    mltrack.start_run('no-room')\n"
        "except mltrack.SpoolFullError as exc:\n"
        "    print('refused', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(small_disk)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLTRACK_DATA_DIR": str(small_disk / "data")},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused"), result.stdout
    assert mlflow.MlflowClient(sqlite_uri).search_runs(["0"]) == []


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Seam: os.write as seen by the spool writes at most 7 bytes per call, as a full pipe or a signal may.
    real_write = os.write
    monkeypatch.setattr("mltrack.storage.spool.os.write", lambda fd, data: real_write(fd, bytes(data[:7])))
    spool = RunSpool(tmp_path, "r1", "sqlite:///x.db")
    spool.append_record({"p": ["lr", "0.1"]})
    spool.append_metric("loss", 1.0, 5, 0)
    spool.close(delete=False)
    contents = read_spool(spool.path)
    assert contents.problems == []
    assert contents.params == [("lr", "0.1")]
    assert contents.metrics == [("loss", 1.0, 5, 0)]


def test_a_damaged_record_costs_only_itself(tmp_path: Path) -> None:
    spool = RunSpool(tmp_path, "r1", "sqlite:///x.db")
    spool.append_record({"p": ["a", "1"]})
    spool.close(delete=False)
    with open(spool.path / "log", "ab") as fh:
        fh.write(b"\x00garbage from a torn write\xff\x4d\x54")  # including a partial marker
    reopened_fd = os.open(spool.path / "log", os.O_WRONLY | os.O_APPEND)
    from mltrack.storage.spool import frame

    os.write(reopened_fd, frame({"p": ["b", "2"]}))
    os.close(reopened_fd)
    contents = read_spool(spool.path)
    assert contents.params == [("a", "1"), ("b", "2")]
    assert any("unreadable bytes" in p for p in contents.problems)


KILLED_CHILD = (
    "import os, sys, mltrack\n"
    "run = mltrack.start_run(sys.argv[1])\n"
    "mltrack.log_param('p', 1)\n"
    "for i in range(100):\n"
    "    mltrack.log_metric('loss', float(i), step=i)\n"
    "print(run.run_id, flush=True)\n"
    "os.kill(os.getpid(), 9)\n"
)


def _killed_run(name: str) -> tuple[str, Path]:
    env = {**os.environ, **NOTHING_DELIVERED_BEFORE_KILL}  # the tests count what replay delivers
    result = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, name], capture_output=True, text=True, env=env, timeout=120
    )
    run_id = result.stdout.split()[0]
    (folder,) = (spool_root(_data_dir()) / run_id).iterdir()
    return run_id, folder


def _damage(kind: str, folder: Path) -> None:
    log = folder / "log"
    if kind == "no-header":
        data = log.read_bytes()
        log.write_bytes(data[data.index(b"\xffMTR", 1) :])  # drop the first record
    elif kind == "empty-log":
        log.write_bytes(b"")
    elif kind == "garbage-log":
        log.write_bytes(os.urandom(300).replace(b"\xff", b"\x00"))
    elif kind == "deleted-lock":
        (folder / "lock").unlink()
    elif kind == "odd-segment":
        segment = folder / "seg-000000"
        segment.write_bytes(segment.read_bytes()[: 32 * 50 + 13])
    elif kind == "garbage-mid-log":
        data = log.read_bytes()
        cut = data.index(b"\xffMTR", 1)
        log.write_bytes(data[:cut] + b"junk" * 10 + data[cut:])


@pytest.mark.parametrize(
    ("kind", "delivered"),
    [
        ("no-header", 0),
        ("empty-log", 0),
        ("garbage-log", 0),
        ("deleted-lock", 100),
        ("odd-segment", 50),
        ("garbage-mid-log", 100),
    ],
)
def test_a_damaged_spool_is_quarantined_and_never_blocks_the_others(sqlite_uri: str, kind: str, delivered: int) -> None:
    damaged_run, damaged = _killed_run("damaged")
    _damage(kind, damaged)
    healthy_run, _ = _killed_run("healthy")  # its start_run replays (or skips) the damaged spool
    with mltrack.start_run("next") as run:  # a new run on the store is never blocked by replay problems
        mltrack.log_metric("x", 1.0)
    code, _ = _sync()
    assert code == 0
    client = mlflow.MlflowClient(sqlite_uri)
    assert len(client.get_metric_history(healthy_run, "loss")) == 100
    assert client.get_run(healthy_run).info.status == "KILLED"
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert len(client.get_metric_history(damaged_run, "loss")) == delivered
    quarantined = list((_data_dir() / "quarantine" / "spools").glob("*")) if kind != "deleted-lock" else []
    if kind == "deleted-lock":
        assert client.get_run(damaged_run).info.status == "KILLED"  # judged by its header: the writer is gone
    else:
        (folder,) = quarantined
        report = json.loads((folder / "report.json").read_text())
        assert report["reason"]
        assert (folder / "log").exists()  # never deleted while it may hold data
    assert not (spool_root(_data_dir()) / damaged_run).exists()
    assert _sync() == (0, [])


def test_a_spool_whose_writer_is_alive_is_not_replayed_even_without_its_lock_file(sqlite_uri: str) -> None:
    with mltrack.start_run("alive") as run:
        mltrack.log_metric("x", 1.0)
        assert run.spool is not None
        (run.spool.path / "lock").unlink()
        assert _sync() == (0, [])
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FINISHED"


# -- the start window -------------------------------------------------------------------------------


def test_a_process_killed_while_collecting_context_tags_leaves_a_run_that_sync_marks_killed(
    sqlite_uri: str,
) -> None:
    code = (
        "import os, time, mltrack, mltrack.tracking.runs as runs\n"
        "def slow_tags(run):\n"
        "    print(run.run_id, flush=True)\n"
        "    time.sleep(60)\n"
        "runs._context_tags = slow_tags\n"
        "mltrack.start_run('window')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        child.kill()
        child.wait(30)
    finally:
        child.kill()
    code_, reports = _sync()
    assert code_ == 0 and [r["status_set"] for r in reports] == ["KILLED"]
    run = mlflow.MlflowClient(sqlite_uri).get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["mltrack.killed.detected_by"] == "mltrack sync"


def test_a_process_killed_inside_create_run_is_found_by_its_spool_id(sqlite_uri: str) -> None:
    # Seam: the store's create_run returns, then the process dies before the spool is bound to the run.
    code = (
        "import os, mltrack\n"
        "from mltrack.storage.spool import RunSpool\n"
        "def die(self, run_id):\n"
        "    print(run_id, flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
        "RunSpool.bind = die\n"
        "mltrack.start_run('unbound')\n"
    )
    result = run_python(code)
    run_id = result.stdout.strip()
    assert result.returncode == -signal.SIGKILL and run_id
    assert (spool_root(_data_dir()) / "_starting").is_dir()
    _, reports = _sync()
    assert [(r["run_id"], r["status_set"]) for r in reports] == [(run_id, "KILLED")]
    assert mlflow.MlflowClient(sqlite_uri).get_run(run_id).info.status == "KILLED"


# -- memory and outages -----------------------------------------------------------------------------


def test_memory_stays_bounded_during_a_long_outage(sqlite_uri: str) -> None:
    # Seam: the store's write fails as an unreachable server does (connection refused), for the whole loop.
    code = (
        "import mltrack, mltrack.storage.store as store\n"
        "def down(self, batch):\n"
        "    raise ConnectionRefusedError('store down')\n"
        "store.MlflowStore.write = down\n"
        "mltrack.configure(write_retries=0)\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "run = mltrack.start_run('outage')\n"
        "for i in range(20_000):\n"
        "    mltrack.log_metric('warmup', 1.0, step=i)\n"
        "base = rss()\n"
        "for i in range(1_000_000):\n"
        "    mltrack.log_metric('loss', 1.0, step=i)\n"
        "print((rss() - base) / 2**20, flush=True)\n"
        "import os; os._exit(0)\n"
    )
    result = run_python(code, timeout=300)
    assert result.returncode == 0, result.stderr
    growth_mb = float(result.stdout.strip().splitlines()[-1])
    assert growth_mb < 48, f"the process grew by {growth_mb:.0f} MB for a 1M-point backlog"


class SlowSink(Sink):
    """Seam: a primary sink standing in for a slow but working store."""

    name = "mlflow"

    def __init__(self, delay: float = 0.0, down: bool = False) -> None:
        self.delay = delay
        self.down = down
        self.sizes: list[int] = []

    def log_batch(self, batch: Batch) -> None:
        if self.down:
            raise ConnectionRefusedError("store down")
        time.sleep(self.delay)
        self.sizes.append(len(batch.metrics))


def test_after_an_outage_the_backlog_is_sent_in_full_batches(tmp_path: Path) -> None:
    sink = SlowSink(down=True)
    writer = BackgroundWriter(flush_interval_s=0.01, retries=0, backoff_s=0)
    spool = RunSpool(tmp_path, "r1", "x")
    writer.open_run("r1", sink, "0", None, spool)
    for step in range(5_000):
        spool.append_metric("loss", 1.0, 0, step)
        if step % 100 == 0:
            time.sleep(0.005)  # many writer cycles pass during the outage
    with pytest.raises(mltrack.LoggingFailedError, match="5000 item"):
        writer.flush(5)
    sink.down = False
    writer.flush(5)
    assert sink.sizes == [1000] * 5
    writer.stop()


def test_waiting_for_the_store_counts_from_its_last_progress(tmp_path: Path) -> None:
    sink = SlowSink(delay=0.25)
    writer = BackgroundWriter(flush_interval_s=0.01)
    spool = RunSpool(tmp_path, "r1", "x")
    writer.open_run("r1", sink, "0", None, spool)
    for step in range(8_000):
        spool.append_metric("loss", 1.0, 0, step)
    started = time.monotonic()
    writer.flush(1.0)  # 8 batches of 0.25 s: 2 s in all, but never 1 s without progress
    assert time.monotonic() - started > 1.5
    assert sum(sink.sizes) == 8_000
    writer.stop()


@pytest.mark.slow
@pytest.mark.server
def test_sync_while_the_server_is_down_keeps_the_spool_for_later_and_quarantines_nothing(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrack.testing.servers import TcpProxy

    # the session's server behind a proxy that is cut: an outage without restarting a server
    with TcpProxy(int(mlflow_server.rsplit(":", 1)[1])) as proxy:
        monkeypatch.setenv("MLTRACK_TRACKING_URI", proxy.url)
        run_id, _ = _killed_run("down-later")
        proxy.cut()
        started = time.monotonic()
        code, reports = _sync()
        assert time.monotonic() - started < 60
        assert code == 1 and reports[0]["error"] and not reports[0]["quarantined"]
        assert not (_data_dir() / "quarantine").exists()
        proxy.restore()
        code, reports = _sync()
        assert code == 0 and reports[0]["metrics"] == 100
    assert mlflow.MlflowClient(mlflow_server).get_run(run_id).info.status == "KILLED"
