"""Crash loss: what survives when a training process is killed, MLTrack beside MLflow's async logging.

Each scenario runs in a fresh ``python`` child process (this script with ``--child``) that starts a run,
prints its run id, then logs ``loss`` points ``step=0..N-1`` in a tight loop. After every call returns
the child writes how many calls have returned into a shared counter file (``mmap`` +
``struct.pack_into``), so the parent knows exactly what a call accepted even after a SIGKILL. Every
250 calls (fewer in short runs) it also stores how long its logging loop has taken so far in the same
file, so the per-call cost is known even when the loop is killed half way.

Scenarios (each with a fresh sqlite store ``sqlite:///<tmp>/<scenario>-<tracker>.db``, copied from an
empty migrated template to skip MLflow's migrations, and a fresh ``MLTRACK_DATA_DIR``):

* ``sigkill-mid``: SIGKILL as soon as the counter passes half the points;
* ``sigkill-after``: the child prints ``logged`` after the loop and sleeps; SIGKILL on reading it;
* ``sigterm-mid`` / ``sigterm-after``: the same with SIGTERM;
* ``normal-exit``: the child returns after the loop without ending its run.

Contenders: ``mltrack.log_metric`` (default settings, so its crash-safe spool is on) and
``mlflow.log_metric(..., synchronous=False)`` inside ``mlflow.start_run()`` after
``mlflow.set_tracking_uri(uri)``.

What is printed per scenario and contender:

* **logged**: calls that returned (the shared counter, read after the child is gone);
* **replayed**: for MLTrack, the parent then runs ``mltrack sync --json`` with the child's
  ``MLTRACK_DATA_DIR`` and ``MLTRACK_TRACKING_URI`` and sums the metric points of its replay reports.
  MLflow has no replay;
* **stored**: ``len(MlflowClient(uri).get_metric_history(run_id, "loss"))`` after that;
* **lost**: steps ``0..logged-1`` missing from the store, and that as a % of *logged*. A point whose call
  was in flight at the kill may be stored without having been counted (shown as ``+1 in flight``);
* **status**: the run's status afterwards (nothing ends an MLflow run killed by a signal: it stays RUNNING);
* **µs/call**: the child's loop time divided by the calls it timed; the loop includes the counter write,
  whose own cost (a loop with only the counter write, measured in each child) is printed below the table.

MLflow's async logging costs about 2 ms per call on sqlite on a 2-core machine, and its exit-time
drain of 10,000 points takes over a minute, so by default the MLflow contender logs
``--mlflow-points`` (5,000) instead of ``--points`` (10,000), which keeps the whole report around two
minutes; such rows are marked ``*`` and their mid-loop kill comes after half of *their* points.
``--full`` logs ``--points`` for both (about 3.5 minutes there). Compare losses as percentages.

Targets for MLTrack, each row marked PASS/MISS: SIGKILL loses ≤ 0.1 % of ``--points``; SIGTERM and normal
exit lose nothing; the per-call cost stays ≤ 5 µs. The status each scenario should leave (KILLED after a
signal, FINISHED after a normal exit) is checked as well. The script always exits 0: it is a report.

Children inherit this environment except ``MLTRACK_TRACKING_URI`` / ``MLFLOW_TRACKING_URI``, with
``MLTRACK_DISABLE_PLUGINS=broken-import,misspelled-hook`` (deliberately broken test plugins), and run in
the temporary folder so no ``mltrack.toml`` / ``.env`` / ``pyproject.toml`` of the caller applies.

Run:  .venv/bin/python benchmarks/crash_loss.py [--points 10000] [--mlflow-points 2000] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

METRIC_KEY = "loss"
RUN_ID_PREFIX = "RUN_ID "
LOGGED_LINE = "logged"
BROKEN_PLUGINS = "broken-import,misspelled-hook"
CHUNK = 250  # the loop's time is published every CHUNK calls (fewer for short runs)

# shared counter file: calls returned, calls timed, ns those took, ns of the counter-only loop, its calls
COUNT = struct.Struct("<q")
TIMING = struct.Struct("<qq")
FLOOR = struct.Struct("<qq")
COUNTER_SIZE = 40
TIMING_OFFSET = 8
FLOOR_OFFSET = 24

TARGET_SIGKILL_LOSS = 0.001  # of --points
TARGET_PER_CALL_US = 5.0

TRACKERS = {"mltrack": "mltrack", "mlflow": "mlflow async"}


@dataclass(frozen=True)
class Scenario:
    name: str
    signal: signal.Signals | None
    when: str  # "mid": when the counter passes half the points; "after": on reading "logged"; "exit": none
    expected_status: str


SCENARIOS = (
    Scenario("sigkill-mid", signal.SIGKILL, "mid", "KILLED"),
    Scenario("sigkill-after", signal.SIGKILL, "after", "KILLED"),
    Scenario("sigterm-mid", signal.SIGTERM, "mid", "KILLED"),
    Scenario("sigterm-after", signal.SIGTERM, "after", "KILLED"),
    Scenario("normal-exit", None, "exit", "FINISHED"),
)


# -- the child ------------------------------------------------------------------------------------


def child_main(spec: dict[str, Any]) -> None:
    """Start a run, log ``points`` points publishing the count after each call, then sleep or return."""
    import mmap

    fd = os.open(spec["counter"], os.O_RDWR)
    counter = mmap.mmap(fd, COUNTER_SIZE)
    os.close(fd)
    total: int = spec["points"]
    clock = time.perf_counter_ns
    count_into = COUNT.pack_into
    timing_into = TIMING.pack_into
    chunk = max(1, min(CHUNK, total // 20))

    # The floor: the same loop with only the counter write (into a private buffer).
    scratch = bytearray(COUNTER_SIZE)
    t0 = clock()
    for i in range(total):
        count_into(scratch, 0, i + 1)
    FLOOR.pack_into(counter, FLOOR_OFFSET, clock() - t0, total)

    timed_ns = 0
    if spec["tracker"] == "mltrack":
        import mltrack

        run = mltrack.start_run(f"crash-{spec['scenario']}")
        print(RUN_ID_PREFIX + run.run_id, flush=True)
        log_metric = mltrack.log_metric
        for start in range(0, total, chunk):
            t0 = clock()
            for i in range(start, min(start + chunk, total)):
                log_metric(METRIC_KEY, 1.0 / (i + 1), step=i)
                count_into(counter, 0, i + 1)
            timed_ns += clock() - t0
            timing_into(counter, TIMING_OFFSET, min(start + chunk, total), timed_ns)
    else:
        import mlflow

        mlflow.set_tracking_uri(spec["uri"])
        active = mlflow.start_run(run_name=f"crash-{spec['scenario']}")
        print(RUN_ID_PREFIX + active.info.run_id, flush=True)
        log_metric = mlflow.log_metric
        for start in range(0, total, chunk):
            t0 = clock()
            for i in range(start, min(start + chunk, total)):
                log_metric(METRIC_KEY, 1.0 / (i + 1), step=i, synchronous=False)
                count_into(counter, 0, i + 1)
            timed_ns += clock() - t0
            timing_into(counter, TIMING_OFFSET, min(start + chunk, total), timed_ns)
    print(LOGGED_LINE, flush=True)
    if spec["after"] == "sleep":
        time.sleep(spec["sleep_s"])  # the parent kills it long before this ends
    # "return": leave without ending the run; the trackers' exit hooks do what they do


# -- the parent -----------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    tracker: str
    points: int
    run_id: str = ""
    logged: int = 0
    stored: int | None = None
    lost: int | None = None
    extra: int = 0
    duplicates: int = 0
    status: str = ""
    exit_code: int | None = None
    per_call_us: float | None = None
    floor_us: float | None = None
    replayed: int | None = None
    sync_statuses: str = ""
    spool_left: int = 0
    signalled_at: int | None = None
    seconds: float = 0.0
    error: str | None = None
    notes: str = ""

    @property
    def label(self) -> str:
        return TRACKERS[self.tracker]

    @property
    def lost_pct(self) -> float | None:
        if self.lost is None:
            return None
        return 100.0 * self.lost / self.logged if self.logged else 0.0


class LineReader:
    """Reads a child's stdout in a thread so the parent can wait for a line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Any, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None  # the child closed its stdout (it exited)
            self.seen.append(line)
            if predicate(line):
                return line


def read_counter(path: Path) -> tuple[int, int, int, int, int]:
    data = path.read_bytes()
    (count,) = COUNT.unpack_from(data, 0)
    timed, timed_ns = TIMING.unpack_from(data, TIMING_OFFSET)
    floor_ns, floor_calls = FLOOR.unpack_from(data, FLOOR_OFFSET)
    return count, timed, timed_ns, floor_ns, floor_calls


def child_env(data_dir: Path, uri: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    env["MLTRACK_DISABLE_PLUGINS"] = BROKEN_PLUGINS
    env["MLTRACK_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    if uri is not None:
        env["MLTRACK_TRACKING_URI"] = uri
    return env


def tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def mltrack_cli() -> list[str]:
    script = Path(sys.executable).with_name("mltrack")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mltrack"]


def run_scenario(scenario: Scenario, tracker: str, points: int, template: Path, tmp: Path, timeout: float) -> Result:
    import mlflow

    result = Result(scenario, tracker, points)
    name = f"{scenario.name}-{tracker}"
    folder = tmp / name
    folder.mkdir()
    db = tmp / f"{name}.db"
    shutil.copyfile(template, db)
    uri = f"sqlite:///{db}"
    data_dir = folder / "mltrack-data"
    counter = folder / "counter"
    counter.write_bytes(b"\0" * COUNTER_SIZE)
    stderr_path = folder / "child.stderr"
    env = child_env(data_dir, uri if tracker == "mltrack" else None)
    spec = {
        "tracker": tracker,
        "scenario": scenario.name,
        "uri": uri,
        "points": points,
        "counter": str(counter),
        "after": "return" if scenario.when == "exit" else "sleep",
        "sleep_s": 3600,
    }
    started = time.perf_counter()
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=folder,
        )
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    try:
        line = reader.wait_for(lambda s: s.startswith(RUN_ID_PREFIX), timeout)
        if line is None:
            raise RuntimeError(f"no run id from the child: {tail(stderr_path)}")
        result.run_id = line[len(RUN_ID_PREFIX) :].strip()
        if scenario.when == "mid":
            deadline = time.monotonic() + timeout
            while read_counter(counter)[0] < points // 2:
                if process.poll() is not None:
                    raise RuntimeError(f"child exited {process.returncode} mid-loop: {tail(stderr_path)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the child did not reach {points // 2} calls in {timeout:.0f}s")
                time.sleep(0.0005)
        elif scenario.when == "after" and reader.wait_for(lambda s: s == LOGGED_LINE, timeout) is None:
            raise RuntimeError(f"the child never printed {LOGGED_LINE!r}: {tail(stderr_path)}")
        if scenario.signal is not None:
            result.signalled_at = read_counter(counter)[0]
            process.send_signal(scenario.signal)
        try:
            result.exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            result.exit_code = process.wait()
            result.notes += f"did not exit within {timeout:.0f}s of the signal (SIGKILLed); "
    except Exception as exc:
        result.error = str(exc)
        if process.poll() is None:
            process.kill()
            process.wait()
    finally:
        if process.stdout is not None:
            process.stdout.close()
    result.logged, timed, timed_ns, floor_ns, floor_calls = read_counter(counter)
    if timed:
        result.per_call_us = timed_ns / timed / 1e3
    if floor_calls:
        result.floor_us = floor_ns / floor_calls / 1e3
    if scenario.when == "mid" and result.signalled_at is not None and result.signalled_at >= points:
        result.notes += "the loop had finished before the signal; "
    if result.error is not None or not result.run_id:
        result.seconds = time.perf_counter() - started
        return result

    if tracker == "mltrack":
        done = subprocess.run(
            [*mltrack_cli(), "sync", "--json"],
            capture_output=True,
            text=True,
            env=child_env(data_dir, uri),
            cwd=folder,
            timeout=timeout,
        )
        out = done.stdout
        try:
            reports = json.loads(out[out.index("[") :])
        except ValueError:
            result.notes += f"mltrack sync exited {done.returncode} without JSON: {done.stderr.strip()[-300:]}; "
            reports = []
        result.replayed = sum(int(r.get("metrics") or 0) for r in reports)
        result.sync_statuses = ",".join(str(r.get("status_set")) for r in reports)
        for report in reports:
            if report.get("error"):
                result.notes += f"replay error: {report['error']}; "
            for problem in report.get("problems") or []:
                result.notes += f"replay problem: {problem}; "
        spool = data_dir / "spool"
        if spool.is_dir():
            result.spool_left = sum(1 for run in spool.iterdir() if run.is_dir() for _ in run.iterdir())
        if result.spool_left:
            result.notes += f"{result.spool_left} spool folder(s) left after sync; "

    client = mlflow.MlflowClient(uri)
    history = client.get_metric_history(result.run_id, METRIC_KEY)
    steps = [m.step for m in history]
    unique = set(steps)
    result.stored = len(history)
    result.duplicates = len(steps) - len(unique)
    result.lost = sum(1 for step in range(result.logged) if step not in unique)
    result.extra = sum(1 for step in unique if step >= result.logged)
    result.status = client.get_run(result.run_id).info.status
    if result.duplicates:
        result.notes += f"{result.duplicates} duplicate point(s) in the store; "
    if tracker == "mlflow":
        errors = [line for line in tail(stderr_path, 400).split(" | ") if " ERROR " in line]
        if errors:
            message = errors[0].split(": ", 1)[-1]
            result.notes += f"{len(errors)} MLflow ERROR line(s) on stderr, e.g. {message[:150]!r}; "
    result.seconds = time.perf_counter() - started
    return result


# -- the report -----------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a[/]"
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def checks(result: Result, points: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, ok) for an MLTrack row."""
    out: list[tuple[str, str, bool | None]] = []
    name = result.scenario.name
    if result.error is not None or result.lost is None:
        return [(f"{name}: ran", result.error or "no result", False)]
    if result.scenario.signal == signal.SIGKILL:
        allowed = int(TARGET_SIGKILL_LOSS * points)
        out.append(
            (
                f"{name}: lost ≤ {TARGET_SIGKILL_LOSS:.1%} of {points:,} ({allowed:,} points)",
                f"{result.lost:,} lost",
                result.lost <= allowed,
            )
        )
    else:
        out.append((f"{name}: lost = 0", f"{result.lost:,} lost", result.lost == 0))
    out.append(
        (
            f"{name}: per call ≤ {TARGET_PER_CALL_US:g} µs",
            "n/a" if result.per_call_us is None else f"{result.per_call_us:.2f} µs",
            None if result.per_call_us is None else result.per_call_us <= TARGET_PER_CALL_US,
        )
    )
    return out


def report(results: list[Result], args: argparse.Namespace, total_s: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(160, Console().width))
    table = Table(title=f"Points lost when the process dies ({args.points:,} points per scenario)", header_style="bold")
    for column, justify in (
        ("scenario", "left"),
        ("tracker", "left"),
        ("exit", "right"),
        ("logged", "right"),
        ("replayed", "right"),
        ("stored", "right"),
        ("lost", "right"),
        ("lost %", "right"),
        ("status after", "left"),
        ("µs/call", "right"),
        ("verdict", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    scaled = False
    for result in results:
        is_ours = result.tracker == "mltrack"
        short = not is_ours and result.points != args.points
        scaled |= short
        label = result.label + (f" *({result.points:,})" if short else "")
        if result.error is not None:
            table.add_row(result.scenario.name, label, "", "", "", "", f"[red]{result.error[:90]}[/]", *[""] * 3, "")
            continue
        verdict = "—"
        if is_ours:
            verdict = _verdict(all(ok for _, _, ok in checks(result, args.points)))
        lost = "" if result.lost is None else f"{result.lost:,}"
        if result.lost:
            lost = f"[red]{lost}[/]"
        stored = "" if result.stored is None else f"{result.stored:,}"
        if result.extra:
            stored += f" (+{result.extra} in flight)"
        status = result.status
        if status != result.scenario.expected_status:
            status = f"[yellow]{status}[/]"
        table.add_row(
            result.scenario.name,
            label,
            "" if result.exit_code is None else str(result.exit_code),
            f"{result.logged:,}",
            "n/a" if result.replayed is None else f"{result.replayed:,}",
            stored,
            lost,
            "" if result.lost_pct is None else f"{result.lost_pct:.2f} %",
            status,
            "" if result.per_call_us is None else f"{result.per_call_us:,.2f}",
            verdict,
        )
    console.print(table)
    if scaled:
        console.print(
            f"* MLflow logged {args.mlflow_points:,} points per scenario (--mlflow-points) to keep the run short; "
            "compare lost %. --full logs --points for both."
        )
    floors = [r.floor_us for r in results if r.floor_us is not None]
    if floors:
        console.print(
            f"µs/call = the child's loop time / calls timed, including the counter write after each call "
            f"(the counter write alone: {min(floors):.2f}-{max(floors):.2f} µs). 'replayed' = metric points that "
            "`mltrack sync` sent; 'lost' = steps below 'logged' missing from the store; "
            "'+N in flight' = stored points whose call had not returned when the process died."
        )
    notes = [(r, r.notes.strip("; ")) for r in results if r.notes]
    if notes:
        console.print()
        console.print("[bold]Notes[/]")
        for result, note in notes:
            console.print(f"  {result.scenario.name} / {result.label}: {note}")
    console.print()
    targets = Table(title="MLTrack targets", header_style="bold")
    for column in ("target", "measured", "result"):
        targets.add_column(column)
    for result in results:
        if result.tracker != "mltrack":
            continue
        for target, measured, ok in checks(result, args.points):
            targets.add_row(target, measured, _verdict(ok))
        if result.error is None:
            targets.add_row(
                f"{result.scenario.name}: status {result.scenario.expected_status} (documented behaviour)",
                result.status,
                _verdict(result.status == result.scenario.expected_status),
            )
    console.print(targets)
    console.print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"total {total_s:.0f} s (each row: child start, loop, signal, exit, mltrack sync for mltrack, read back)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=10_000, help="points MLTrack logs per scenario")
    parser.add_argument(
        "--mlflow-points", type=int, default=5_000, help="points MLflow async logs per scenario (unless --full)"
    )
    parser.add_argument("--full", action="store_true", help="MLflow logs --points as well (several minutes)")
    parser.add_argument(
        "--scenarios", nargs="+", choices=[s.name for s in SCENARIOS], default=[s.name for s in SCENARIOS]
    )
    parser.add_argument("--trackers", nargs="+", choices=list(TRACKERS), default=list(TRACKERS))
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for each step of a child")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return 0
    if args.full:
        args.mlflow_points = args.points
    if args.points < 2 or args.mlflow_points < 2:
        parser.error("--points and --mlflow-points must be at least 2")

    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import: mlflow configures its logger then

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mltrack-crash-loss-"))
    try:
        template = tmp / "template.db"
        mlflow.MlflowClient(f"sqlite:///{template}").search_experiments()  # migrate once, copy per scenario
        outside = sorted(k for k in os.environ if k.startswith("MLTRACK_") and k != "MLTRACK_TRACKING_URI")
        print(
            f"crash_loss: {args.points:,} points (mltrack), {args.mlflow_points:,} (mlflow async); temp {tmp}"
            + (f"; inherited settings: {', '.join(outside)}" if outside else ""),
            flush=True,
        )
        results: list[Result] = []
        for scenario in SCENARIOS:
            if scenario.name not in args.scenarios:
                continue
            for tracker in args.trackers:
                points = args.points if tracker == "mltrack" else args.mlflow_points
                result = run_scenario(scenario, tracker, points, template, tmp, args.timeout)
                results.append(result)
                print(
                    f"  {scenario.name:<14} {result.label:<13} logged {result.logged:>6,}  "
                    + (
                        f"ERROR {result.error}"
                        if result.error
                        else f"stored {result.stored:>6,}  lost {result.lost:>6,}  {result.status:<8}  "
                        f"{result.per_call_us or 0:,.2f} µs/call"
                    )
                    + f"  ({result.seconds:.1f}s)",
                    flush=True,
                )
        report(results, args, time.perf_counter() - started)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
