"""The background writer: batching within MLflow's limits, retries, failure reporting, sinks."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import run_python

import mltrack
from mltrack.errors import LoggingFailedError
from mltrack.storage.records import Batch, Metric, Param, Tag
from mltrack.storage.sinks import Sink
from mltrack.storage.writer import METRIC, PARAM, BackgroundWriter, split_batch
from mltrack.testing.servers import TcpProxy


def test_split_batch_respects_mlflow_limits() -> None:
    batch = Batch(
        "r",
        metrics=[Metric("m", float(i), i, i) for i in range(2500)],
        params=[Param(f"p{i}", "v") for i in range(150)],
        tags=[Tag(f"t{i}", "v" * 7000) for i in range(150)],
    )
    parts = split_batch(batch)
    for part in parts:
        assert len(part.metrics) <= 1000
        assert len(part.params) <= 100 and len(part.tags) <= 100
        assert len(part) <= 1000
        assert sum(len(t.value) for t in part.tags) <= 800_000
    assert [m.step for p in parts for m in p.metrics] == list(range(2500))
    assert sum(len(p.params) for p in parts) == 150
    assert sum(len(p.tags) for p in parts) == 150


class RecordingSink(Sink):
    name = "recording"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[Batch] = []
        self.lock = threading.Lock()

    def log_batch(self, batch: Batch) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("store unavailable")
            self.batches.append(batch)


def test_failed_write_is_retried_with_backoff() -> None:
    # Seam: the primary sink object stands in for the store, so failures are scripted.
    delays: list[float] = []
    primary = RecordingSink(failures=3)
    writer = BackgroundWriter(flush_interval_s=0.01, retries=5, backoff_s=0.1, sleep=delays.append)
    writer.open_run("r1", primary, "0", None)
    writer.put((METRIC, "r1", "loss", 1.0, 0, 0, -1))
    writer.flush(5)
    assert delays == [0.1, 0.2, 0.4]
    assert [m.value for b in primary.batches for m in b.metrics] == [1.0]
    writer.stop()


def test_write_that_keeps_failing_is_raised_at_flush_and_kept() -> None:
    primary = RecordingSink(failures=100)
    writer = BackgroundWriter(flush_interval_s=0.01, retries=2, backoff_s=0, sleep=lambda s: None)
    writer.open_run("r1", primary, "0", None)
    writer.put((PARAM, "r1", "lr", "0.1"))
    with pytest.raises(LoggingFailedError, match=r"1 item\(s\) of run r1 .*ConnectionError: store unavailable"):
        writer.flush(5)
    primary.failures = 0  # the store comes back: the kept data is delivered on the next cycle
    writer.flush(5)
    assert [p for b in primary.batches for p in b.params] == [Param("lr", "0.1")]
    writer.stop()


def test_failing_extra_sink_is_degraded_and_the_run_goes_on() -> None:
    class Broken(Sink):
        name = "broken"

        def log_batch(self, batch: Batch) -> None:
            raise RuntimeError("bus down")

    primary = RecordingSink()
    writer = BackgroundWriter(flush_interval_s=0.01, extra_sinks=[Broken()])
    writer.open_run("r1", primary, "0", None)
    writer.put((METRIC, "r1", "loss", 1.0, 0, 0, -1))
    writer.flush(5)
    assert "bus down" in writer.degraded["broken"]
    assert len(primary.batches) == 1
    writer.stop()


def test_plugin_sink_receives_the_same_batches(tmp_path: Path, sqlite_uri: str) -> None:
    sink_file = tmp_path / "sink.jsonl"
    result = run_python(
        "import mltrack\n"
        "with mltrack.start_run('sinked') as run:\n"
        "    mltrack.log_param('lr', 0.1)\n"
        "    for i in range(1500):\n"
        "        mltrack.log_metric('loss', float(i), step=i)\n"
        "print(run.run_id)\n",
        env={"MLTRACK_FIXTURE_SINK_PATH": str(sink_file)},
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip().splitlines()[-1]
    events = [json.loads(line) for line in sink_file.read_text().splitlines()]
    assert events[0] == {"event": "start", "run_id": run_id}
    assert events[-1] == {"event": "end", "run_id": run_id, "status": "FINISHED"}
    batches = [e for e in events if e["event"] == "batch"]
    assert all(len(b["metrics"]) <= 1000 for b in batches)
    assert sorted(m[3] for b in batches for m in b["metrics"]) == list(range(1500))
    assert [p for b in batches for p in b["params"]] == [["lr", "0.1"]]
    stored = mlflow.MlflowClient(sqlite_uri).get_metric_history(run_id, "loss")
    assert len(stored) == 1500


@pytest.mark.slow
@pytest.mark.server
def test_store_outage_raises_at_flush_then_delivers_everything(mlflow_server: str, monkeypatch: Any) -> None:
    # the session's server behind a proxy that is cut: an outage without restarting a server
    with TcpProxy(int(mlflow_server.rsplit(":", 1)[1])) as proxy:
        monkeypatch.setenv("MLTRACK_TRACKING_URI", proxy.url)
        mltrack.configure(write_retries=1, retry_backoff_s=0.05)
        run = mltrack.start_run("outage")
        mltrack.log_metric("loss", 1.0, step=0)
        mltrack.flush()
        proxy.cut()
        for step in range(1, 101):
            mltrack.log_metric("loss", 1.0 / step, step=step)
        with pytest.raises(LoggingFailedError, match="could not be written"):
            mltrack.flush()
        proxy.restore()
        mltrack.flush()
        mltrack.end_run(run=run)
    history = mlflow.MlflowClient(mlflow_server).get_metric_history(run.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(101))
