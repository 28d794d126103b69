"""Model serving: ``mltrack serve`` beside ``mlflow models serve``, the same model, one after the other.

The model: a scikit-learn pipeline (StandardScaler, LogisticRegression) on 8 float features
``f0``..``f7``, logged with ``mltrack.log_model`` (so in the sklearn plugin's default skops
format) and registered as ``bench`` v1 in a fresh sqlite store in a temporary folder. Both
servers serve ``models:/bench/1`` from that store, with one worker process each and their
default settings otherwise (MLflow: ``--env-manager local``; uvicorn logs each request at
its default level; mltrack: default micro-batching, 64 rows / 2 ms, no per-request log line).

What is measured, for each server:

* **cold start**: from just before the server process is started until the first ``GET /ping``
  answers 200, polling every 20 ms. Each server is started ``--cold-starts`` times (default 3;
  each mltrack start gets an empty data dir, so it downloads the model as MLflow does), the
  servers taking turns so that a change in the machine's load hits both, and the best and the
  median are reported, with the CPU seconds the server's processes had used by then (user +
  system, from /proc; for MLflow the CLI and its uvicorn child), which other load on the
  machine disturbs less than wall time. Both servers answer ``/ping`` only once the model is loaded.
* **throughput and latency**: on the last started process, ``wrk`` with ``--connections`` (32)
  connections and ``--threads`` (2) threads posts the same one-row JSON body
  (``{"dataframe_split": {"columns": [...], "data": [[8 floats]]}}``, from a Lua script written to a
  temporary file) to ``/invocations``: a ``--warmup`` run (2 s, not reported), then a
  ``--duration`` run (10 s) with ``--latency``. Reported: requests/s, the p50 and p99 latency from
  wrk's latency distribution, the count of non-2xx answers and of socket errors (both must be 0).
* **same answers**: before the load, one multi-row request goes to each server and the
  predictions are compared with the model's own.

Targets (printed with PASS/MISS; the script always exits 0, it is a report): mltrack serves
≥ 2x MLflow's requests/s at a p99 latency no worse than MLflow's, with no non-2xx answers; its
median cold start is ≤ 0.5x MLflow's.

Needs ``wrk`` on the PATH (Debian package ``wrk``). The machine runs the load generator and the
server on the same cores, as a single-host deployment would.

``--from-directory`` gives both servers the model's folder (downloaded once, before any timing)
instead of the registry URI: how the ``local`` provider, the SageMaker container (``/opt/ml/model``)
and the Modal image start, with no registry lookup in the cold start.

Run:  .venv/bin/python benchmarks/serve_throughput.py [--duration 10] [--cold-starts 3] [--only mltrack]
      [--cold-only]  (cold starts only: no load, no wrk)  [--from-directory]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FEATURES = [f"f{i}" for i in range(8)]
MODEL_URI = "models:/bench/1"
LABELS = {"mltrack": "mltrack serve", "mlflow": "mlflow models serve"}

TARGET_RPS_RATIO = 2.0
TARGET_COLD_RATIO = 0.5

SETUP = """
import json, sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
import mltrack

rng = np.random.default_rng(0)
frame = pd.DataFrame(rng.normal(size=(2000, 8)), columns={features!r})
labels = (frame.sum(axis=1) > 0).astype(int)
model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels)
with mltrack.start_run(run_name="serve-throughput"):
    mltrack.log_model(model, "model", input_example=frame.head(3), registered_model_name="bench")
sample = frame.sample(5, random_state=1)
print("SETUP " + json.dumps({{"sample": sample.values.tolist(), "expected": model.predict(sample).tolist()}}))
"""


@dataclass
class Result:
    kind: str
    cold_starts: list[float] = field(default_factory=list)
    cold_cpu: list[float] = field(default_factory=list)  #: CPU seconds the server used to get ready
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int | None = None
    socket_errors: int | None = None
    requests: int | None = None
    same_answers: bool | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def cold_best(self) -> float | None:
        return min(self.cold_starts) if self.cold_starts else None

    @property
    def cold_median(self) -> float | None:
        return statistics.median(self.cold_starts) if self.cold_starts else None

    @property
    def cold_cpu_median(self) -> float | None:
        return statistics.median(self.cold_cpu) if self.cold_cpu else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


#: what both servers are given: the registry URI, or (``--from-directory``) the model's folder
served: dict[str, str] = {"model": MODEL_URI}


def command(kind: str, port: int) -> list[str]:
    model = served["model"]
    if kind == "mltrack":
        return [venv_bin("mltrack"), "serve", model, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return [
        venv_bin("mlflow"), "models", "serve", "-m", model, "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port), "-w", "1",
    ]  # fmt: skip


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in entries:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[2] is the process group (5th field of stat)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


class Server:
    """One server process (in its own session, so that MLflow's uvicorn child stops with it)."""

    def __init__(self, kind: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.started = time.perf_counter()
        self.cpu_s: float | None = None
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                command(kind, self.port), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from start to the first 200 on /ping (``cpu_s``: CPU seconds the group used by then)."""
        while True:
            if ping(self.url) == 200:
                seconds = time.perf_counter() - self.started
                self.cpu_s = group_cpu_seconds(self.proc.pid)
                return seconds
            if self.proc.poll() is not None:
                tail = self.log.read_text().strip().splitlines()[-5:]
                raise RuntimeError(f"exited {self.proc.returncode}: " + " | ".join(tail))
            if time.perf_counter() - self.started > timeout:
                raise RuntimeError(f"no 200 on /ping within {timeout:.0f}s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM the process group and wait until all of it is gone (MLflow's uvicorn child too)."""
        deadline = time.perf_counter() + 30
        sig: int = signal.SIGTERM
        while True:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            self.proc.poll()  # reap the leader, so that the group can empty
            sig = signal.SIGKILL if time.perf_counter() > deadline else 0
            time.sleep(0.05)
        self.proc.wait(10)


LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


def run_wrk(url: str, script: Path, args: argparse.Namespace, duration: float, latency: bool) -> str:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "-s", str(script)]
    argv += ["--latency"] if latency else []
    done = subprocess.run([*argv, f"{url}/invocations"], capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, result: Result) -> None:
    """requests/s, p50/p99 (from --latency), non-2xx and socket errors out of wrk's report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and p50 and p99):
        raise RuntimeError(f"could not parse wrk's output:\n{output}")
    result.rps = float(rps.group(1))
    result.p50_ms, result.p99_ms = _ms(p50.group(1)), _ms(p99.group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result.non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result.socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    total = re.search(r"(\d+) requests in", output)
    result.requests = int(total.group(1)) if total else None


def environment(kind: str, tmp: Path, attempt: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # MLflow runs `uvicorn`
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    if kind == "mltrack":  # an empty data dir each time: the model is downloaded, as MLflow downloads it
        env.update(MLTRACK_TRACKING_URI=store, MLTRACK_DATA_DIR=str(tmp / f"mltrack-data-{attempt}"))
    else:
        env.update(MLFLOW_TRACKING_URI=store)
    return env


def cold_start(result: Result, attempt: int, args: argparse.Namespace, tmp: Path, log: Any) -> Server:
    """Start a server and time it to its first 200 on /ping (one retry if the start fails)."""
    kind = result.kind
    env = environment(kind, tmp, attempt)
    server = Server(kind, env, tmp / f"{kind}-{attempt}.log")
    try:
        seconds = server.wait_ready(args.timeout)
    except RuntimeError as exc:  # e.g. another program took the free port first
        log(f"  {result.label:<20} start {attempt + 1} failed ({exc}); trying again on another port")
        server.stop()
        server = Server(kind, env, tmp / f"{kind}-{attempt}-again.log")
        seconds = server.wait_ready(args.timeout)
    result.cold_starts.append(seconds)
    if server.cpu_s is not None:
        result.cold_cpu.append(server.cpu_s)
    cpu = f" ({server.cpu_s:.2f} CPU s)" if server.cpu_s is not None else ""
    log(f"  {result.label:<20} cold start {attempt + 1}/{args.cold_starts}: {seconds:.2f} s{cpu}")
    return server


def load(result: Result, server: Server, args: argparse.Namespace, tmp: Path, setup: dict[str, Any], log: Any) -> None:
    """Check the answers, then wrk: a warm-up run and the measured run."""
    body = {"dataframe_split": {"columns": FEATURES, "data": setup["sample"]}}
    answer = post(server.url, body)
    result.same_answers = answer == {"predictions": setup["expected"]}
    if not result.same_answers:
        log(f"  {result.label} answered {answer}, expected {setup['expected']}")
    script = tmp / "post.lua"
    one_row = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [setup["sample"][0]]}})
    script.write_text(LUA.format(body=one_row))
    run_wrk(server.url, script, args, args.warmup, latency=False)
    parse_wrk(run_wrk(server.url, script, args, args.duration, latency=True), result)
    log(
        f"  {result.label:<20} {result.rps:,.0f} req/s  p50 {result.p50_ms:.1f} ms  p99 {result.p99_ms:.1f} ms  "
        f"non-2xx {result.non_2xx}  socket errors {result.socket_errors}"
    )


def measure(kinds: list[str], args: argparse.Namespace, tmp: Path, setup: dict[str, Any], log: Any) -> list[Result]:
    """Cold starts alternate between the servers (a change in the machine's load hits both);
    the last start of each server then takes the load."""
    results = [Result(kind) for kind in kinds]
    for attempt in range(args.cold_starts):
        for result in results:
            if result.error:
                continue
            server: Server | None = None
            try:
                server = cold_start(result, attempt, args, tmp, log)
                if attempt == args.cold_starts - 1 and not args.cold_only:
                    load(result, server, args, tmp, setup, log)
            except Exception as exc:  # report and go on: this is a report, not a test
                result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log(f"  {result.label:<20} FAILED: {exc}")
            finally:
                if server is not None:
                    server.stop()
    return results


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a[/]"
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def report(results: list[Result], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(130, Console().width))
    table = Table(
        title=f"Serving one-row JSON requests: wrk, {args.connections} connections, {args.duration:g} s, 1 worker",
        header_style="bold",
    )
    for name in ("server", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "requests",
                 f"cold start s (best / median of {args.cold_starts})", "CPU s to ready", "same answers"):  # fmt: skip
        table.add_column(name, justify="left" if name == "server" else "right")
    for r in results:
        if r.error and r.rps is None:
            table.add_row(r.label, f"[red]{r.error}[/]", *[""] * 5, _cold(r), _num(r.cold_cpu_median, ".2f"), "")
            continue
        table.add_row(
            r.label,
            _num(r.rps, ",.0f"),
            _num(r.p50_ms, ".1f"),
            _num(r.p99_ms, ".1f"),
            str(r.non_2xx),
            str(r.socket_errors),
            _num(r.requests, ","),
            _cold(r),
            _num(r.cold_cpu_median, ".2f"),
            "n/a" if r.same_answers is None else "yes" if r.same_answers else "[red]no[/]",
        )
    console.print(table)
    ours = next((r for r in results if r.kind == "mltrack"), None)
    theirs = next((r for r in results if r.kind == "mlflow"), None)
    rps_ratio = p99_ok = cold_ratio = None
    if ours and theirs and ours.rps and theirs.rps:
        rps_ratio = ours.rps / theirs.rps
        p99_ok = ours.p99_ms is not None and theirs.p99_ms is not None and ours.p99_ms <= theirs.p99_ms
    if ours and theirs and ours.cold_median and theirs.cold_median:
        cold_ratio = ours.cold_median / theirs.cold_median
    console.print()
    console.print("[bold]Ratios[/] (mltrack / MLflow, same model, same machine, same run of this script)")
    console.print(f"  requests/s: {_num(rps_ratio, '.2f')}x")
    if ours and theirs and ours.p99_ms and theirs.p99_ms and ours.p50_ms and theirs.p50_ms:
        console.print(
            f"  p50 latency: {ours.p50_ms / theirs.p50_ms:.2f}x   p99 latency: {ours.p99_ms / theirs.p99_ms:.2f}x"
        )
    if ours and theirs and ours.cold_best and theirs.cold_best:
        console.print(
            f"  cold start: {_num(cold_ratio, '.2f')}x (median), {ours.cold_best / theirs.cold_best:.2f}x (best)"
        )
    if ours and theirs and ours.cold_cpu_median and theirs.cold_cpu_median:
        console.print(
            f"  CPU used to get ready: {ours.cold_cpu_median / theirs.cold_cpu_median:.2f}x (median; "
            "less sensitive than wall time to other load on the machine)"
        )
    clean = ours is not None and ours.non_2xx == 0 and ours.socket_errors == 0 if ours and ours.rps else None
    targets = Table(title="Targets", header_style="bold")
    targets.add_column("target")
    targets.add_column("result", justify="right")
    targets.add_column("verdict")
    targets.add_row(
        f"requests/s ≥ {TARGET_RPS_RATIO:g}x MLflow's",
        f"{_num(rps_ratio, '.2f')}x",
        _verdict(None if rps_ratio is None else rps_ratio >= TARGET_RPS_RATIO),
    )
    targets.add_row(
        "p99 latency ≤ MLflow's",
        f"{_num(ours.p99_ms if ours else None, '.1f')} vs {_num(theirs.p99_ms if theirs else None, '.1f')} ms",
        _verdict(p99_ok),
    )
    targets.add_row("no non-2xx answers, no socket errors (mltrack)", "", _verdict(clean))
    targets.add_row(
        f"cold start ≤ {TARGET_COLD_RATIO:g}x MLflow's (median)",
        f"{_num(cold_ratio, '.2f')}x",
        _verdict(None if cold_ratio is None else cold_ratio <= TARGET_COLD_RATIO),
    )
    console.print()
    console.print(targets)


def _cold(r: Result) -> str:
    return f"{_num(r.cold_best, '.2f')} / {_num(r.cold_median, '.2f')}" if r.cold_starts else "n/a"


def setup_store(tmp: Path, log: Any) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
    env.update(MLTRACK_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}", MLTRACK_DATA_DIR=str(tmp / "setup-data"))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", SETUP.format(features=FEATURES)], capture_output=True, text=True, env=env, cwd=tmp,
        timeout=600,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("SETUP "):
            log(f"  logged and registered {MODEL_URI} in {tmp / 'mlflow.db'} ({time.perf_counter() - started:.1f} s)")
            result: dict[str, Any] = json.loads(line[len("SETUP ") :])
            return result
    raise RuntimeError(f"setting up the model failed:\n{done.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10, help="seconds of measured load (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--cold-starts", type=int, default=3, help="starts per server (default 3)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a server may take to start")
    parser.add_argument("--only", choices=sorted(LABELS), action="append", help="measure only this server")
    parser.add_argument("--cold-only", action="store_true", help="measure cold starts only (no load; wrk not needed)")
    parser.add_argument(
        "--from-directory",
        action="store_true",
        help="both servers serve the model's downloaded folder instead of models:/bench/1 (no registry lookup)",
    )
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, flush=True)

    if shutil.which("wrk") is None and not args.cold_only:
        log("wrk is not installed: `sudo apt-get install -y wrk` (Debian package 'wrk'); nothing measured")
        return
    kinds = args.only or ["mltrack", "mlflow"]
    with tempfile.TemporaryDirectory(prefix="mltrack-serve-bench-") as folder:
        tmp = Path(folder)
        log(f"serve_throughput: {', '.join(LABELS[k] for k in kinds)}; load average {os.getloadavg()[0]:.2f}, "
            f"{os.cpu_count()} CPUs")  # fmt: skip
        try:
            setup = setup_store(tmp, log)
        except Exception as exc:
            log(f"  setup FAILED: {exc}")
            return
        if args.from_directory:
            import mlflow
            import mlflow.artifacts

            mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
            mlflow.set_registry_uri(f"sqlite:///{tmp / 'mlflow.db'}")
            folder_path = mlflow.artifacts.download_artifacts(artifact_uri=MODEL_URI, dst_path=str(tmp / "model-dir"))
            served["model"] = str(Path(folder_path).resolve())
            log(f"  both servers serve the folder {served['model']}")
        results = measure(kinds, args, tmp, setup, log)
    report(results, args)


if __name__ == "__main__":
    main()
