"""Logging overhead: ``mltrack.log_metric`` beside MLflow's synchronous and asynchronous logging.

What is measured, for each contender and each store:

* **per-call µs**: the mean cost of one ``log_metric`` call inside a tight loop of ``--points``
  steps (default 10,000), i.e. the loop's ``time.perf_counter`` duration divided by the number of
  calls. This is what the training loop pays.
* **loop+flush s**: the time from the first call of the loop until every point is durable in the
  store: the loop plus ``mltrack.flush()`` (mltrack), plus ``mlflow.flush_async_logging()`` (MLflow
  async), or the loop alone (MLflow sync, where each call returns after its write).
* **CPU µs/pt to durable**: CPU time (user + system) from the first call of the loop until every
  point is durable, divided by the points, of the logging process *and* of the helper processes
  it caused (MLTrack's writer process, child processes): what the machine pays, not just the
  caller. A background thread's CPU is part of the logging process's.
* **points stored**: every run is read back with ``MlflowClient(uri).get_metric_history(run_id,
  "loss")`` after the run ended, and the count is compared with what was logged (warm-up + loop).

Contenders: ``mltrack.log_metric`` with ``writer = "thread"`` (the thread writer) and the same with
``writer = "process"`` (the store writes run in MLTrack's writer process);
``mlflow.log_metric(..., synchronous=True)``;
``mlflow.log_metric(..., synchronous=False)``; and a floor, ``collections.deque.append`` of a small
tuple, the least a non-blocking logger can do per call.

Stores: a fresh sqlite file per contender (``sqlite:///<tmp>/<contender>.db``) and one local
``mlflow server`` (sqlite backend) shared by the server contenders, started with
``mltrack.testing.servers.MlflowServer``.

mltrack runs with its default settings, so its crash-safe spool is on (each call also writes its point
into a memory-mapped spool file); each mltrack child gets its own ``data_dir`` in the temporary folder,
and the child reports any spool file left behind after ``end_run``.

How: every contender runs in its own fresh ``python`` subprocess (this script with ``--worker``),
so imports, caches and background threads of one cannot affect another. The child sets the
tracking URI, starts a run, makes ``--warmup`` calls (default 20) and flushes them (not timed),
then times the loop, then times the flush, ends the run and reads the metric back. It also
records CPython garbage-collector pauses that start during the loop (``gc.callbacks``), because a
single full collection of MLflow's large object graph can dominate a 10 ms loop.

MLflow is slow enough that logging 10,000 points through it would take several minutes, so by
default the MLflow contenders log fewer points (``--mlflow-points``, ``--mlflow-sync-server-points``)
and their loop+flush time is scaled linearly to ``--points``; such rows are marked ``*`` and the
output says so. ``--full`` logs ``--points`` for every contender (expect 5-10 minutes).

Targets (printed with PASS/MISS; the script always exits 0, it is a report):
per call ≤ 5 µs and ≥ 500x faster than MLflow sync; loop plus flush ≤ 1 s on sqlite and ≥ 40x
faster than either MLflow mode.

Run:  .venv/bin/python benchmarks/log_overhead.py [--points 10000] [--repeat 3] [--stores sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "
METRIC_KEY = "loss"

# contender kind -> label shown in the table
LABELS = {
    "deque": "deque.append (floor)",
    "mltrack": "mltrack.log_metric",
    "mltrack-process": "mltrack (writer process)",
    "mlflow-async": "mlflow async",
    "mlflow-sync": "mlflow sync",
}

TARGET_PER_CALL_US = 5.0
TARGET_PER_CALL_VS_SYNC = 500.0
TARGET_TOTAL_SQLITE_S = 1.0
TARGET_TOTAL_VS_MLFLOW = 40.0


# -- the child ------------------------------------------------------------------------------------


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one contender in this (fresh) process and return its measurements."""
    import gc

    kind: str = spec["kind"]
    uri: str = spec["uri"]
    points: int = spec["points"]
    warmup: int = spec["warmup"]
    perf = time.perf_counter

    gc_pauses: list[tuple[float, float]] = []  # (start, duration) of each collection
    gc_started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = perf()
        else:
            gc_pauses.append((gc_started[0], perf() - gc_started[0]))

    t_import = perf()
    result: dict[str, Any] = {"kind": kind, "points": points, "warmup": warmup}

    if kind == "deque":
        from collections import deque

        queue: deque[tuple[str, float, int]] = deque()
        append = queue.append
        for i in range(warmup):
            append((METRIC_KEY, float(i), i))
        queue.clear()
        gc.callbacks.append(on_gc)
        t0 = perf()
        for i in range(points):
            append((METRIC_KEY, float(i), i))
        t1 = perf()
        gc.callbacks.remove(on_gc)
        result.update(import_s=0.0, start_run_s=0.0, loop_s=t1 - t0, flush_s=0.0, end_run_s=0.0, stored=len(queue))
        result["expected"] = points
        result["gc_ms"] = 1000 * sum(d for s, d in gc_pauses if t0 <= s <= t1)
        return result

    import mlflow

    helpers: list[int] = []
    if kind in ("mltrack", "mltrack-process"):
        import mltrack

        result["import_s"] = perf() - t_import
        # Default settings (the crash-safe spool included), but the spool lives in this child's temp folder.
        data_dir = Path(spec["data_dir"])
        extra = {"writer": "process" if kind == "mltrack-process" else "thread"}
        mltrack.configure(tracking_uri=uri, data_dir=data_dir, **extra)
        t = perf()
        run = mltrack.start_run(run_name="bench-mltrack")
        result["start_run_s"] = perf() - t
        run_id = run.run_id
        for i in range(warmup):
            mltrack.log_metric(METRIC_KEY, float(i), step=i)
        mltrack.flush()
        from mltrack.tracking import runs

        writer_pid = getattr(runs.get_writer(), "writer_pid", 0)
        helpers = [writer_pid] if writer_pid else []
        gc.callbacks.append(on_gc)
        cpu0, helper0 = time.process_time(), _helpers_cpu(helpers)
        t0 = perf()
        for i in range(warmup, warmup + points):
            mltrack.log_metric(METRIC_KEY, float(i), step=i)
        t1 = perf()
        mltrack.flush()
        t2 = perf()
        cpu2, helper2 = time.process_time(), _helpers_cpu(helpers)
        gc.callbacks.remove(on_gc)
        mltrack.end_run()
        t3 = perf()
        spool_root = data_dir / "spool"
        result["spool_left"] = sum(1 for p in spool_root.rglob("*") if p.is_file()) if spool_root.exists() else 0
    elif kind in ("mlflow-sync", "mlflow-async"):
        synchronous = kind == "mlflow-sync"
        result["import_s"] = perf() - t_import
        mlflow.set_tracking_uri(uri)
        t = perf()
        active = mlflow.start_run(run_name=f"bench-{kind}")
        result["start_run_s"] = perf() - t
        run_id = active.info.run_id
        for i in range(warmup):
            mlflow.log_metric(METRIC_KEY, float(i), step=i, synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()
        gc.callbacks.append(on_gc)
        cpu0, helper0 = time.process_time(), _helpers_cpu(helpers)
        t0 = perf()
        for i in range(warmup, warmup + points):
            mlflow.log_metric(METRIC_KEY, float(i), step=i, synchronous=synchronous)
        t1 = perf()
        if not synchronous:
            mlflow.flush_async_logging()
        t2 = perf()
        cpu2, helper2 = time.process_time(), _helpers_cpu(helpers)
        gc.callbacks.remove(on_gc)
        mlflow.end_run()
        t3 = perf()
    else:
        raise SystemExit(f"unknown contender kind {kind!r}")

    history = mlflow.MlflowClient(uri).get_metric_history(run_id, METRIC_KEY)
    result.update(
        run_id=run_id,
        loop_s=t1 - t0,
        flush_s=t2 - t1,
        end_run_s=t3 - t2,
        cpu_s=cpu2 - cpu0,
        helper_cpu_s=helper2 - helper0,
        stored=len(history),
        expected=warmup + points,
        gc_ms=1000 * sum(d for s, d in gc_pauses if t0 <= s <= t1),
    )
    return result


def _helpers_cpu(helper_pids: list[int]) -> float:
    """CPU seconds so far of this process's child processes and the named helper processes."""
    import psutil

    seen: dict[int, Any] = {p.pid: p for p in psutil.Process().children(recursive=True)}
    for pid in helper_pids:
        if pid not in seen:
            try:
                seen[pid] = psutil.Process(pid)
            except psutil.Error:
                pass
    total = 0.0
    for proc in seen.values():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def worker_main(raw: str) -> None:
    result = _worker(json.loads(raw))
    sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


# -- the parent -----------------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    store: str
    target_points: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def _median(self, key: str) -> float:
        return statistics.median(float(r[key]) for r in self.runs)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.error is None

    @property
    def measured_points(self) -> int:
        return int(self.runs[0]["points"])

    @property
    def scale(self) -> float:
        return self.target_points / self.measured_points

    @property
    def per_call_us(self) -> float:
        return statistics.median(1e6 * float(r["loop_s"]) / int(r["points"]) for r in self.runs)

    @property
    def loop_s(self) -> float:
        return self._median("loop_s")

    @property
    def flush_s(self) -> float:
        return self._median("flush_s")

    @property
    def total_measured_s(self) -> float:
        return statistics.median(float(r["loop_s"]) + float(r["flush_s"]) for r in self.runs)

    @property
    def total_s(self) -> float:
        """Loop plus flush for ``target_points`` (scaled linearly if fewer were measured)."""
        return self.total_measured_s * self.scale

    @property
    def cpu_per_point_us(self) -> float:
        """CPU of every process involved, first call to durable, per point."""
        return statistics.median(
            1e6 * (float(r.get("cpu_s", 0)) + float(r.get("helper_cpu_s", 0))) / int(r["points"]) for r in self.runs
        )

    @property
    def caller_cpu_per_point_us(self) -> float:
        return statistics.median(1e6 * float(r.get("cpu_s", 0)) / int(r["points"]) for r in self.runs)

    @property
    def gc_ms(self) -> float:
        return self._median("gc_ms")

    @property
    def per_call_no_gc_us(self) -> float:
        """Per-call cost with the GC pauses that hit the loop taken out (a pause holds the GIL)."""
        return statistics.median(
            max(0.0, 1e3 * float(r["loop_s"]) - float(r["gc_ms"])) * 1e3 / int(r["points"]) for r in self.runs
        )

    @property
    def stored(self) -> str:
        counts = [f"{r['stored']}/{r['expected']}" for r in self.runs]
        if len(set(counts)) == 1:
            return counts[0] + (f" (x{len(counts)})" if len(counts) > 1 else "")
        return " ".join(counts)

    @property
    def complete(self) -> bool:
        return all(r["stored"] == r["expected"] for r in self.runs)


def run_child(spec: dict[str, Any], timeout: float, cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
    env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
    raise RuntimeError(f"child exited {done.returncode} without a result:\n    " + "\n    ".join(tail))


def measure(row: Row, uri: str, points: int, warmup: int, repeat: int, timeout: float, tmp: Path, log: Any) -> None:
    for attempt in range(repeat):
        this_uri = uri
        if uri.startswith("sqlite:"):  # a fresh database file for every child
            this_uri = f"sqlite:///{tmp / f'{row.kind}-{attempt}.db'}"
        data_dir = tmp / f"mltrack-data-{row.kind}-{row.store}-{attempt}"
        spec = {"kind": row.kind, "uri": this_uri, "points": points, "warmup": warmup, "data_dir": str(data_dir)}
        started = time.perf_counter()
        try:
            result = run_child(spec, timeout, tmp)
        except subprocess.TimeoutExpired:
            row.error = f"timed out after {timeout:.0f}s"
            log(f"  {row.label:<22} {row.store:<7} {row.error}")
            return
        except Exception as exc:  # report and go on: this is a report, not a test
            row.error = str(exc)
            log(f"  {row.label:<22} {row.store:<7} FAILED: {exc}")
            return
        row.runs.append(result)
        log(
            f"  {row.label:<22} {row.store:<7} {points:>6} pts  "
            f"{1e6 * result['loop_s'] / points:>10.2f} µs/call  loop {result['loop_s']:.3f}s  "
            f"flush {result['flush_s']:.3f}s  stored {result['stored']}/{result['expected']}  "
            f"gc {result['gc_ms']:.0f}ms  (child {time.perf_counter() - started:.1f}s)"
            + (f"  spool files left after end_run: {result['spool_left']}" if result.get("spool_left") else "")
        )


def server_alive(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return bool(response.status == 200)
    except Exception:
        return False


def server_rows(
    rows: list[Row], plan: tuple[tuple[str, int, int], ...], args: argparse.Namespace, tmp: Path, log: Any
) -> None:
    """Run the server contenders against one ``mlflow server``, restarted if it dies."""
    from mltrack.testing.servers import MlflowServer

    server: MlflowServer | None = None

    def ensure_server() -> MlflowServer | None:
        nonlocal server
        if server is not None and server_alive(server.url):
            return server
        if server is not None:
            log(f"  mlflow server at {server.url} is gone (log: {server.log_path}); starting a new one")
            server.stop()
        started = time.perf_counter()
        candidate = MlflowServer(backend_uri=f"sqlite:///{tmp / 'srv.db'}", artifacts_dir=tmp / "art")
        try:
            server = candidate.start()
        except Exception as exc:
            log(f"  mlflow server did not start: {exc}")
            server = None
            return None
        log(f"  mlflow server at {server.url} (started in {time.perf_counter() - started:.1f}s)")
        return server

    server_plan = (*plan[:3], ("mlflow-sync", args.mlflow_sync_server_points, args.mlflow_repeat))
    try:
        for kind, points, repeat in server_plan:
            row = Row(kind, "server", args.points)
            rows.append(row)
            current = ensure_server()
            if current is None:
                row.error = "mlflow server did not start"
                continue
            measure(row, current.url, points, args.warmup, repeat, args.timeout, tmp, log)
            if row.error and not server_alive(current.url):
                row.error = f"mlflow server died during the run ({row.error.splitlines()[0]})"
    finally:
        if server is not None:
            server.stop()


def _fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a[/]"
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def _ratio(slow: Row | None, fast: Row | None, attr: str) -> float | None:
    if slow is None or fast is None or not slow.ok or not fast.ok:
        return None
    denominator = float(getattr(fast, attr))
    return float(getattr(slow, attr)) / denominator if denominator > 0 else None


def report(rows: list[Row], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    table = Table(title=f"log_metric overhead, {args.points:,} steps (median of runs)", header_style="bold")
    for name, justify in (
        ("contender", "left"),
        ("store", "left"),
        ("pts timed", "right"),
        ("per-call µs", "right"),
        ("excl. GC µs", "right"),
        ("loop s", "right"),
        ("flush s", "right"),
        (f"loop+flush s ({args.points:,} pts)", "right"),
        ("CPU µs/pt to durable (caller)", "right"),
        ("points stored", "right"),
        ("GC in loop ms", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    any_scaled = False
    for row in rows:
        if not row.ok:
            table.add_row(row.label, row.store, "", f"[red]{row.error or 'no result'}[/]", *[""] * 7)
            continue
        scaled = row.measured_points != row.target_points
        any_scaled |= scaled
        stored = row.stored if row.complete else f"[red]{row.stored}[/]"
        table.add_row(
            row.label,
            row.store,
            f"{row.measured_points:,}",
            f"{row.per_call_us:,.2f}",
            f"{row.per_call_no_gc_us:,.2f}",
            f"{row.loop_s:.3f}",
            f"{row.flush_s:.3f}",
            f"{row.total_s:,.3f}" + (f" *(x{row.scale:g})" if scaled else ""),
            f"{row.cpu_per_point_us:,.1f} ({row.caller_cpu_per_point_us:,.1f})" if row.kind != "deque" else "",
            stored,
            f"{row.gc_ms:.0f}",
        )
    console.print(table)
    if any_scaled:
        console.print(
            "* measured with fewer points (see 'pts timed') and scaled linearly to "
            f"{args.points:,} points; run with --full to measure every contender at --points. "
            "MLflow's cost per point is roughly constant or grows with size, so linear scaling does not favour mltrack."
        )
    console.print(
        "per-call µs = loop time / points (mean). loop+flush = loop + flush until durable "
        "(mltrack.flush / mlflow.flush_async_logging; MLflow sync writes in the call). "
        "CPU µs/pt to durable = CPU of the logging process plus its helper processes (MLTrack's writer "
        "process) from the first call until durable, per point; (caller) = the logging process alone. "
        "GC in loop = CPython garbage-collector pauses that began during the loop (any thread; a pause holds "
        "the GIL, so the logging thread waits); excl. GC = (loop - GC in loop) / points."
    )

    def find(kind: str, store: str) -> Row | None:
        return next((r for r in rows if r.kind == kind and r.store == store), None)

    console.print()
    console.print("[bold]Ratios[/] (mltrack vs MLflow, same store, same run of this script)")
    targets: list[tuple[str, str, bool | None]] = []
    for store in args.stores:
        ours = find("mltrack", store)
        sync = find("mlflow-sync", store)
        async_ = find("mlflow-async", store)
        floor = find("deque", "memory")
        call_sync = _ratio(sync, ours, "per_call_us")
        call_async = _ratio(async_, ours, "per_call_us")
        total_sync = _ratio(sync, ours, "total_s")
        total_async = _ratio(async_, ours, "total_s")
        console.print(
            f"  {store}: mltrack per-call is {_fmt_ratio(call_sync)} faster than mlflow sync, "
            f"{_fmt_ratio(call_async)} faster than mlflow async"
        )
        console.print(
            f"  {store}: loop+flush {_fmt_ratio(total_sync)} faster than mlflow sync, "
            f"{_fmt_ratio(total_async)} faster than mlflow async"
        )
        if floor is not None and floor.ok and ours is not None and ours.ok:
            console.print(
                f"  {store}: mltrack per-call is {_fmt_ratio(ours.per_call_us / floor.per_call_us)} "
                f"the deque.append floor ({floor.per_call_us:.3f} µs)"
            )
        have = ours is not None and ours.ok
        if have and ours and ours.per_call_us > TARGET_PER_CALL_US and ours.gc_ms > 0.5 * 1e3 * ours.loop_s:
            console.print(
                f"  {store}: {ours.gc_ms:.0f} ms of mltrack's {1e3 * ours.loop_s:.0f} ms loop are garbage-collector "
                f"pauses; without them a call costs {ours.per_call_no_gc_us:.2f} µs"
            )
        targets.append(
            (
                f"{store}: per call ≤ {TARGET_PER_CALL_US:g} µs",
                f"{ours.per_call_us:.2f} µs" if have and ours else "n/a",
                (ours.per_call_us <= TARGET_PER_CALL_US) if have and ours else None,
            )
        )
        targets.append(
            (
                f"{store}: per call ≥ {TARGET_PER_CALL_VS_SYNC:g}x faster than mlflow sync",
                _fmt_ratio(call_sync),
                None if call_sync is None else call_sync >= TARGET_PER_CALL_VS_SYNC,
            )
        )
        if store == "sqlite":
            targets.append(
                (
                    f"sqlite: loop+flush ≤ {TARGET_TOTAL_SQLITE_S:g} s",
                    f"{ours.total_s:.3f} s" if have and ours else "n/a",
                    (ours.total_s <= TARGET_TOTAL_SQLITE_S) if have and ours else None,
                )
            )
            for mode, ratio in (("sync", total_sync), ("async", total_async)):
                targets.append(
                    (
                        f"sqlite: loop+flush ≥ {TARGET_TOTAL_VS_MLFLOW:g}x faster than mlflow {mode}",
                        _fmt_ratio(ratio),
                        None if ratio is None else ratio >= TARGET_TOTAL_VS_MLFLOW,
                    )
                )
        if have and ours and not ours.complete:
            targets.append((f"{store}: mltrack stored every point", ours.stored, False))

    console.print()
    target_table = Table(title="Targets", header_style="bold")
    target_table.add_column("target")
    target_table.add_column("result", justify="right")
    target_table.add_column("verdict")
    for name, value, ok in targets:
        target_table.add_row(name, value, _verdict(ok))
    console.print(target_table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=10_000, help="loop length (default 10,000)")
    parser.add_argument(
        "--mlflow-points",
        type=int,
        default=2_000,
        help="points for MLflow sync/async on sqlite and MLflow async on the server (default 2,000); "
        "loop+flush is scaled to --points",
    )
    parser.add_argument(
        "--mlflow-sync-server-points",
        type=int,
        default=500,
        help="points for MLflow sync against the server (~50 ms/call; default 500)",
    )
    parser.add_argument("--full", action="store_true", help="every contender logs --points (slow: minutes)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls before the loop (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of mltrack and the floor (median; default 3)")
    parser.add_argument("--mlflow-repeat", type=int, default=1, help="runs of each MLflow contender (default 1)")
    parser.add_argument("--stores", default="sqlite,server", help="comma-separated: sqlite, server (default: both)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-child timeout in seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker_main(args.worker)
        return

    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(args.stores) - {"sqlite", "server"}
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    if args.full:
        args.mlflow_points = args.mlflow_sync_server_points = args.points
    args.mlflow_points = min(args.mlflow_points, args.points)
    args.mlflow_sync_server_points = min(args.mlflow_sync_server_points, args.points)

    def log(message: str) -> None:
        print(message, flush=True)

    import mlflow

    import mltrack

    started = time.perf_counter()
    log(
        f"log_overhead: python {platform.python_version()}, mlflow {mlflow.__version__}, "
        f"mltrack {mltrack.__version__}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    log(
        f"points {args.points:,}, warm-up {args.warmup}, mltrack/floor runs {args.repeat}, "
        f"MLflow runs {args.mlflow_repeat}, MLflow points {args.mlflow_points:,} "
        f"(sync on server {args.mlflow_sync_server_points:,})"
    )

    tmp_obj = tempfile.TemporaryDirectory(prefix="mltrack-bench-")
    tmp = Path(tmp_obj.name)
    rows: list[Row] = []
    try:
        floor = Row("deque", "memory", args.points)
        rows.append(floor)
        measure(floor, "", args.points, args.warmup, args.repeat, args.timeout, tmp, log)

        plan = (
            ("mltrack", args.points, args.repeat),
            ("mltrack-process", args.points, args.repeat),
            ("mlflow-async", args.mlflow_points, args.mlflow_repeat),
            ("mlflow-sync", args.mlflow_points, args.mlflow_repeat),
        )
        if "sqlite" in args.stores:
            (tmp / "sqlite").mkdir()
            for kind, points, repeat in plan:
                row = Row(kind, "sqlite", args.points)
                rows.append(row)
                measure(row, "sqlite:///", points, args.warmup, repeat, args.timeout, tmp / "sqlite", log)

        if "server" in args.stores:
            server_rows(rows, plan, args, tmp, log)
        log(f"total benchmark time {time.perf_counter() - started:.0f}s")
        print()
        report(rows, args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            tmp_obj.cleanup()


if __name__ == "__main__":
    main()
