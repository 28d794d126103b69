"""The main job as a user runs it: ``make demo`` and its parts, from an empty store.

Runs the Makefile's real targets (train → register → deploy with the local provider →
requests over HTTP → kill-all → demo-clean) against a demo store in a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make(*targets: str, demo_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTRACK_") and k != "MLFLOW_TRACKING_URI"}
    env["VENV"] = str(Path(sys.executable).parent.parent)
    return subprocess.run(
        ["make", "--no-print-directory", *targets, f"DEMO_DIR={demo_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_make_demo_trains_deploys_and_answers_then_cleans_up(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    start = time.monotonic()
    done = make("demo", demo_dir=demo_dir)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for expected in (
        "scikit-learn churn classifier: demo-sklearn v1 (@champion)",
        "PyTorch regression net: demo-torch v1",
        "LangChain ticket summariser: demo-langchain v1",
        "dataframe_split, 3 customers: HTTP 200",
        "CSV, 3 customers: HTTP 200",
        "missing column tenure_months: HTTP 400",
        "local/demo-sklearn",
    ):
        assert expected in out, f"{expected!r} missing from make demo's output:\n{out[-3000:]}"
    assert seconds < 120, f"make demo took {seconds:.0f} s"

    status = make("status", demo_dir=demo_dir)
    assert status.returncode == 0 and "ready" in status.stdout, status.stdout + status.stderr
    logs = make("logs", demo_dir=demo_dir)
    assert logs.returncode == 0 and "model 'demo-sklearn' v1" in logs.stdout, logs.stdout + logs.stderr
    pid = json.loads((demo_dir / "state" / "deployments" / "local" / "demo-sklearn.json").read_text())["pid"]

    assert make("kill-all", demo_dir=demo_dir).returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "kill-all left the server running"
    assert make("demo-clean", demo_dir=demo_dir).returncode == 0
    assert not demo_dir.exists()
