"""A newcomer's commands in sequence: ``make demo``, ``dev``, ``demo-linkedin``, ``logs``, ``kill-all``,
``mlflow-clean FORCE=1``, on a demo store in a temporary folder and free ports, checking that each
prints what a newcomer needs (short lines, the next step, the URLs, the requests' log lines, the
report) and that every process it started is gone at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINE = 160
ACCESS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GET|POST) /\S* \d{3} \d+\.\dms$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Make:
    """Runs targets of the repository's Makefile on one demo folder and one pair of ports."""

    def __init__(self, demo_dir: Path) -> None:
        self.variables = [f"DEMO_DIR={demo_dir}", f"MLFLOW_PORT={free_port()}", f"UI_PORT={free_port()}"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRACK_", "NEXT_PUBLIC_"))}
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.env["VENV"] = str(Path(sys.executable).parent.parent)
        self.stderr = ""

    def __call__(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            ["make", "--no-print-directory", *args, *self.variables],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        assert done.returncode == 0, f"make {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr and "WARNING" not in done.stderr, done.stderr
        self.stderr = done.stderr  # progress lines (the deploy's steps) go there
        return done.stdout


def pids_of(demo_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in demo_dir.glob("*.pid")]


def gone(pid: int, within_s: float = 15) -> bool:
    deadline = time.monotonic() + within_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
def test_a_newcomers_make_targets_run_in_sequence_and_print_what_is_needed(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    make = Make(demo_dir)
    mlflow_port, ui_port = (v.split("=")[1] for v in make.variables[1:])
    started: list[int] = []
    try:
        demo = make("demo")
        long_lines = [line for line in (demo + make.stderr).splitlines() if len(line) > MAX_LINE]
        assert not long_lines, f"make demo printed lines over {MAX_LINE} characters: {long_lines}"
        for expected in (
            "==> training the demo models",
            "demo-sklearn v1 (@champion)",
            "Churn predictions (1 = likely to leave): [1, 0, 1]",
            "local/demo-sklearn",
            "demo-torch",
            "demo-langchain",
        ):
            assert expected in demo, f"{expected!r} missing from make demo's output:\n{demo}"
        assert demo.rstrip().splitlines()[-1].startswith("open the UI: make dev"), demo
        assert "MLTRACK_TRACKING_URI=" not in demo, "make demo echoed its command lines"

        dev = make("dev")
        started = pids_of(demo_dir)
        assert len(started) == 2, dev
        assert f"http://127.0.0.1:{mlflow_port}/" in dev and f"http://127.0.0.1:{ui_port}/" in dev, dev
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/models", timeout=30) as answer:
            assert b"demo-sklearn" in answer.read(), "the UI does not show the demo's models through the server"
        again = make("dev")
        assert "mlflow already runs" in again and "ui already runs" in again, again
        assert pids_of(demo_dir) == started, "a second make dev started the services again"

        report = make("demo-linkedin")
        page = demo_dir / "report" / "report.html"
        assert str(page.resolve()) in report, report
        charts = sorted((demo_dir / "report" / "charts").glob("*.png"))
        assert len(charts) >= 2 and all(c.read_bytes().startswith(b"\x89PNG") for c in charts), charts
        text = page.read_text()
        for name in ("demo-sklearn", "demo-torch", "demo-langchain", "churn-logreg", "@champion"):
            assert name in text, f"{name} missing from the report"
        assert text.count('src="data:image/png;base64,') == len(charts)
        assert not re.search(r'(src|href)="(https?:)?//', text), "the report fetches something"
        assert "deployed endpoint local/demo-sklearn" in text

        logs = make("logs", "LINES=40")
        requests = [line for line in logs.splitlines() if ACCESS_LINE.match(line)]
        assert sum(" POST /invocations 200 " in line for line in requests) >= 3, logs
        assert any(" POST /invocations 400 " in line for line in requests), logs
        assert "mlflow.log" in logs and "ui.log" in logs and f"MLTrack UI on http://127.0.0.1:{ui_port}/" in logs

        stopped = make("kill-all")
        assert "ui (pid" in stopped and "mlflow (pid" in stopped and "local/demo-sklearn" in stopped, stopped
        assert all(gone(pid) for pid in started), "kill-all left a make dev service running"
        assert not list(demo_dir.glob("*.pid"))
    finally:
        if demo_dir.exists():
            cleaned = make("mlflow-clean", "FORCE=1")
            assert "Deleted" in cleaned, cleaned
    assert not demo_dir.exists()
    assert all(gone(pid, 1) for pid in started)
