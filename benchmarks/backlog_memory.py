"""Memory of a training process whose store is down: how it grows with the backlog.

Each contender runs in a fresh child process against a fresh sqlite store whose writes fail as an
unreachable server's do (``MlflowStore.write`` raises ``ConnectionRefusedError``: the one seam). The
child logs ``--points`` metric points (default 1,000,000) after a 20,000-point warm-up and prints its
resident set size growth over the loop, read from ``/proc/self/statm`` (Linux).

Contenders:

* ``mltrack`` — default settings: the spool holds the backlog, the writer reads it back in batches;
* ``mltrack spool=false`` — no spool: unsent points wait in the writer's in-memory queue;
* ``mlflow async`` — ``mlflow.log_metric(..., synchronous=False)`` against a tracking URI that refuses
  connections (``http://127.0.0.1:9``), MLflow's own asynchronous logging queue, for scale.

Usage: ``python benchmarks/backlog_memory.py [--points N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MLTRACK_CHILD = """
import os, sys, mltrack, mltrack.storage.store as store
def down(self, batch):
    raise ConnectionRefusedError("store down")
store.MlflowStore.write = down
mltrack.configure(write_retries=0)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
run = mltrack.start_run("backlog")
for i in range(20_000):
    mltrack.log_metric("warmup", 1.0, step=i)
base = rss()
for i in range(int(sys.argv[1])):
    mltrack.log_metric("loss", 1.0, step=i)
print((rss() - base) / 2**20, flush=True)
os._exit(0)
"""

MLFLOW_CHILD = """
import os, sys, mlflow, logging
logging.disable(logging.CRITICAL)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
mlflow.set_tracking_uri("http://127.0.0.1:9")
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
run_id = "0" * 32
svc = mlflow.tracking.MlflowClient()._tracking_client
for i in range(20_000):
    svc.log_metric(run_id, "warmup", 1.0, 0, i, synchronous=False)
base = rss()
for i in range(int(sys.argv[1])):
    svc.log_metric(run_id, "loss", 1.0, 0, i, synchronous=False)
print((rss() - base) / 2**20, flush=True)
os._exit(0)
"""


def measure(code: str, points: int, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, str(points)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=1800,
    )
    if result.returncode != 0:
        return f"failed: {(result.stderr.strip().splitlines() or ['?'])[-1][:100]}"
    return f"{float(result.stdout.strip().splitlines()[-1]):8.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--skip-mlflow", action="store_true", help="leave out MLflow's async queue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mltrack-backlog-") as tmp:
        base = Path(tmp)
        rows = []
        for name, extra in (("mltrack", {}), ("mltrack spool=false", {"MLTRACK_SPOOL": "0"})):
            env = {
                "MLTRACK_TRACKING_URI": f"sqlite:///{base / name.replace(' ', '-')}.db",
                "MLTRACK_DATA_DIR": str(base / name.replace(" ", "-")),
                "MLTRACK_DISABLE_PLUGINS": "broken-import,misspelled-hook",
                **extra,
            }
            rows.append((name, measure(MLTRACK_CHILD, args.points, env)))
        if not args.skip_mlflow:
            rows.append(("mlflow async", measure(MLFLOW_CHILD, args.points, {})))
    print(f"RSS growth while {args.points:,} points wait for a store that is down")
    for name, figure in rows:
        print(f"  {name:<22} {figure}")
    mltrack_mb = rows[0][1]
    print(f"goal: <= 64 MB over the baseline (issue 11), <= 32 MB (issue 18); mltrack: {mltrack_mb.strip()}")


if __name__ == "__main__":
    main()
