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

Failure scenarios, MLTrack only (MLflow's async logging has no spool to fill, damage or quarantine):

* ``disk-full``: the child's ``MLTRACK_DATA_DIR`` is an 8 MiB tmpfs (``mount -t tmpfs``; the scenario is
  skipped, with the reason printed, where mounting is not permitted) that the parent fills with a filler
  file so that the spool's second 2 MiB segment finds no room: the child logs
  ``SEGMENT_SLOTS + --points/2`` points, catches ``mltrack.SpoolFullError`` at the call that needs that
  segment, deletes the filler and logs the same step again (only calls that returned are counted), and is
  SIGKILLed half way through the rest. It must lose nothing it counted and die by SIGKILL, not SIGBUS;
* ``damaged-spool``: two children log ``--points`` points (and 40 params) with their writers idle
  (``MLTRACK_FLUSH_INTERVAL_MS=60000``, as during a store outage, so the spools hold everything) and
  are SIGKILLed after the loop. One spool is then damaged: 48 garbage bytes over the middle of its
  ``log`` and its first segment truncated to an odd size. ``mltrack sync`` must deliver the healthy spool
  completely and what is readable of the damaged one, quarantine the damaged one with a report. The
  points and params that the damage destroyed (known by reading the spool before damaging it) are
  counted apart from *lost*;
* ``poison-record``: the child waits until the parent has set the param ``dataset`` on its run directly
  in the store (``MlflowClient.log_param``), logs ``dataset`` with another value (which the store
  refuses) and two more params, then ``--points`` points, and is SIGKILLed half way. Everything except
  the refused param must be stored, and the refused record kept in
  ``<data_dir>/quarantine/<run_id>/refused.jsonl``.

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
exit lose nothing, nor do the failure scenarios (beyond what the inflicted damage destroyed, shown in
the *damage* column); the per-call cost stays ≤ 5 µs (a target for the signal scenarios only: in the
failure scenarios two children share the CPUs, or the writer isolates a refused record while the loop
runs). Each failure scenario also checks its own outcome (SpoolFullError raised and no SIGBUS; the
damaged spool quarantined, the healthy one not; the refused param kept in the quarantine, the rest
stored). The status each scenario should leave (KILLED after a signal, FINISHED after a normal exit) is
checked as well. The script always exits 0: it is a report.

Children inherit this environment except ``MLTRACK_TRACKING_URI`` / ``MLFLOW_TRACKING_URI``, with
``MLTRACK_DISABLE_PLUGINS=broken-import,misspelled-hook`` (deliberately broken test plugins), and run in
the temporary folder so no ``mltrack.toml`` / ``.env`` / ``pyproject.toml`` of the caller applies.

Run:  .venv/bin/python benchmarks/crash_loss.py [--points 10000] [--mlflow-points 2000] [--full]
      [--scenarios disk-full damaged-spool poison-record] [--trackers mltrack]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

METRIC_KEY = "loss"
RUN_ID_PREFIX = "RUN_ID "
LOGGED_LINE = "logged"
SPOOL_FULL_PREFIX = "SPOOL_FULL "  # the disk-full child prints this when a call raises SpoolFullError
GO_LINE = "go"  # the poison-record child waits for it on stdin
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

DISK_FULL_MB = 8  # the tmpfs: room for the spool's first 2 MiB segment, not for its second
FILL_MARGIN = 1 << 20  # free bytes left beside the first segment (the log, the lock, page rounding)
DAMAGED_PARAMS = 40  # params of each damaged-spool child: the middle of its log is among them
GARBAGE_BYTES = 48
POISON_KEY = "dataset"
POISON_STORED = "v1-set-in-the-store"
POISON_LOGGED = "v2-logged-by-the-script"
POISON_PARAMS = {POISON_KEY: POISON_LOGGED, "lr": "0.01", "batch_size": "32"}


@dataclass(frozen=True)
class Scenario:
    name: str
    signal: signal.Signals | None
    when: str  # "mid": when the counter passes half the points; "after": on reading "logged"; "exit": none
    expected_status: str
    kind: str = "signal"  # "signal", or the failure scenario's own name (MLTrack only)


SCENARIOS = (
    Scenario("sigkill-mid", signal.SIGKILL, "mid", "KILLED"),
    Scenario("sigkill-after", signal.SIGKILL, "after", "KILLED"),
    Scenario("sigterm-mid", signal.SIGTERM, "mid", "KILLED"),
    Scenario("sigterm-after", signal.SIGTERM, "after", "KILLED"),
    Scenario("normal-exit", None, "exit", "FINISHED"),
    Scenario("disk-full", signal.SIGKILL, "mid", "KILLED", kind="disk-full"),
    Scenario("damaged-spool", signal.SIGKILL, "after", "KILLED", kind="damaged-spool"),
    Scenario("poison-record", signal.SIGKILL, "mid", "KILLED", kind="poison-record"),
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
        if spec.get("wait_go"):
            sys.stdin.readline()  # poison-record: the parent sets a conflicting param in the store first
        if spec.get("params"):
            mltrack.log_params(spec["params"])
        log_metric: Any = mltrack.log_metric  # or mlflow's, below
        if spec.get("filler"):
            _log_through_a_full_disk(log_metric, total, chunk, counter, spec["filler"])
            print(LOGGED_LINE, flush=True)
            time.sleep(spec["sleep_s"])
            return
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


def _log_through_a_full_disk(log_metric: Any, total: int, chunk: int, counter: Any, filler: str) -> None:
    """The disk-full loop: a call refused with SpoolFullError is not counted; the child frees room
    (deletes the filler) and logs the same step again, so the counted steps stay 0..count-1."""
    from mltrack import SpoolFullError

    clock = time.perf_counter_ns
    timed_ns = 0
    for start in range(0, total, chunk):
        t0 = clock()
        for i in range(start, min(start + chunk, total)):
            while True:
                try:
                    log_metric(METRIC_KEY, 1.0 / (i + 1), step=i)
                    break
                except SpoolFullError as exc:
                    print(f"{SPOOL_FULL_PREFIX}{i} {' '.join(str(exc).split())}", flush=True)
                    if not os.path.exists(filler):
                        raise  # nothing left to free: a real failure
                    os.unlink(filler)
            COUNT.pack_into(counter, 0, i + 1)
        timed_ns += clock() - t0
        TIMING.pack_into(counter, TIMING_OFFSET, min(start + chunk, total), timed_ns)


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
    variant: str = ""  # which child of a scenario with several (damaged-spool: healthy / damaged)
    skipped: str | None = None  # why the scenario could not run here
    destroyed: int | None = None  # accepted points the inflicted damage destroyed (not counted as lost)
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)  # the scenario's own checks

    @property
    def label(self) -> str:
        return TRACKERS[self.tracker] + (f" ({self.variant})" if self.variant else "")

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
        self.ended = False  # the child closed its stdout and every line has been taken
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate: Any, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while not self.ended:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.ended = True
                return None  # the child closed its stdout (it exited)
            self.seen.append(line)
            if predicate(line):
                return line
        return None

    def drain(self, timeout: float = 10) -> None:
        """Collect what the child printed until it closed its stdout (call once it has exited)."""
        self.wait_for(lambda _: False, timeout)


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


def new_store(template: Path, tmp: Path, name: str) -> tuple[Path, str]:
    """A folder and a fresh sqlite store (copied from the migrated template) for one scenario."""
    folder = tmp / name
    folder.mkdir()
    db = tmp / f"{name}.db"
    shutil.copyfile(template, db)
    return folder, f"sqlite:///{db}"


class Child:
    """A child process of this script (``--child``): its stdout, stderr file and counter file."""

    def __init__(
        self, spec: dict[str, Any], env: dict[str, str], folder: Path, tag: str = "child", stdin: bool = False
    ) -> None:
        self.counter = folder / ("counter" if tag == "child" else f"{tag}.counter")
        self.counter.write_bytes(b"\0" * COUNTER_SIZE)
        self.stderr_path = folder / f"{tag}.stderr"
        self.signalled_at: int | None = None
        with open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--child",
                    json.dumps({**spec, "counter": str(self.counter)}),
                ],
                stdin=subprocess.PIPE if stdin else None,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=folder,
            )
        assert self.process.stdout is not None
        self.reader = LineReader(self.process.stdout)

    def run_id(self, timeout: float) -> str:
        line = self.reader.wait_for(lambda s: s.startswith(RUN_ID_PREFIX), timeout)
        if line is None:
            raise RuntimeError(f"no run id from the child: {tail(self.stderr_path)}")
        return line[len(RUN_ID_PREFIX) :].strip()

    def wait_calls(self, at_least: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while read_counter(self.counter)[0] < at_least:
            if self.process.poll() is not None:
                raise RuntimeError(f"child exited {self.process.returncode} mid-loop: {tail(self.stderr_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the child did not reach {at_least} calls in {timeout:.0f}s")
            time.sleep(0.0005)

    def wait_logged(self, timeout: float) -> None:
        if self.reader.wait_for(lambda s: s == LOGGED_LINE, timeout) is None:
            raise RuntimeError(f"the child never printed {LOGGED_LINE!r}: {tail(self.stderr_path)}")

    def send(self, sig: signal.Signals) -> None:
        self.signalled_at = read_counter(self.counter)[0]
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float) -> tuple[int, str]:
        """The exit code, and a note if the child had to be SIGKILLed after ``timeout``."""
        try:
            return self.process.wait(timeout), ""
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(), f"did not exit within {timeout:.0f}s of the signal (SIGKILLed); "

    def stop(self) -> None:
        """Kill it if it still runs, collect it and what it printed, close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.drain()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def record(self, result: Result) -> None:
        """Counter readings: calls that returned, the per-call cost, the counter-only floor."""
        result.logged, timed, timed_ns, floor_ns, floor_calls = read_counter(self.counter)
        if timed:
            result.per_call_us = timed_ns / timed / 1e3
        if floor_calls:
            result.floor_us = floor_ns / floor_calls / 1e3
        result.signalled_at = self.signalled_at
        result.exit_code = self.process.returncode


def run_sync(data_dir: Path, uri: str, folder: Path, timeout: float) -> tuple[list[dict[str, Any]], str]:
    """``mltrack sync --json`` with the child's data folder and store: its reports, and a note if
    it printed no JSON."""
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
        return json.loads(out[out.index("[") :]), ""
    except ValueError:
        return [], f"mltrack sync exited {done.returncode} without JSON: {done.stderr.strip()[-300:]}; "


def record_sync(result: Result, reports: list[dict[str, Any]], note: str, data_dir: Path) -> None:
    """What ``mltrack sync`` did for ``result``'s run, and whether it left spools behind."""
    result.notes += note
    mine = [r for r in reports if r.get("run_id") == result.run_id]
    result.replayed = sum(int(r.get("metrics") or 0) for r in mine)
    result.sync_statuses = ",".join(str(r.get("status_set")) for r in mine)
    for report in mine:
        if report.get("error"):
            result.notes += f"replay error: {report['error']}; "
        for problem in report.get("problems") or []:
            result.notes += f"replay problem: {_spool_file(problem)}; "
    spool = data_dir / "spool"
    if spool.is_dir():
        result.spool_left = sum(1 for run in spool.iterdir() if run.is_dir() for _ in run.iterdir())
    if result.spool_left:
        result.notes += f"{result.spool_left} spool folder(s) left after sync; "


def _spool_file(text: str) -> str:
    """``text`` with spool file paths cut to the file's name (``log``, ``seg-000000``)."""
    return re.sub(r"\S*/spool/\S+/(log|seg-\d+):", r"\1:", text)


def measure(result: Result, uri: str, destroyed: frozenset[int] = frozenset()) -> None:
    """Read the run back: stored, lost (steps below *logged* missing, except those in
    ``destroyed``, which go to ``result.destroyed``), duplicates, points in flight, status."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    history = client.get_metric_history(result.run_id, METRIC_KEY)
    steps = [m.step for m in history]
    unique = set(steps)
    missing = {step for step in range(result.logged) if step not in unique}
    result.stored = len(history)
    result.duplicates = len(steps) - len(unique)
    result.lost = len(missing - destroyed)
    if destroyed:
        result.destroyed = len(missing & destroyed)
    result.extra = sum(1 for step in unique if step >= result.logged)
    result.status = client.get_run(result.run_id).info.status
    if result.duplicates:
        result.notes += f"{result.duplicates} duplicate point(s) in the store; "


def run_scenario(scenario: Scenario, tracker: str, points: int, template: Path, tmp: Path, timeout: float) -> Result:
    result = Result(scenario, tracker, points)
    folder, uri = new_store(template, tmp, f"{scenario.name}-{tracker}")
    data_dir = folder / "mltrack-data"
    env = child_env(data_dir, uri if tracker == "mltrack" else None)
    spec = {
        "tracker": tracker,
        "scenario": scenario.name,
        "uri": uri,
        "points": points,
        "after": "return" if scenario.when == "exit" else "sleep",
        "sleep_s": 3600,
    }
    started = time.perf_counter()
    child = Child(spec, env, folder)
    try:
        result.run_id = child.run_id(timeout)
        if scenario.when == "mid":
            child.wait_calls(points // 2, timeout)
        elif scenario.when == "after":
            child.wait_logged(timeout)
        if scenario.signal is not None:
            child.send(scenario.signal)
        _, note = child.wait_exit(timeout)
        result.notes += note
    except Exception as exc:
        result.error = str(exc)
    finally:
        child.stop()
    child.record(result)
    if scenario.when == "mid" and result.signalled_at is not None and result.signalled_at >= points:
        result.notes += "the loop had finished before the signal; "
    if result.error is not None or not result.run_id:
        result.seconds = time.perf_counter() - started
        return result

    if tracker == "mltrack":
        record_sync(result, *run_sync(data_dir, uri, folder, timeout), data_dir)
    measure(result, uri)
    if tracker == "mlflow":
        errors = [line for line in tail(child.stderr_path, 400).split(" | ") if " ERROR " in line]
        if errors:
            message = errors[0].split(": ", 1)[-1]
            result.notes += f"{len(errors)} MLflow ERROR line(s) on stderr, e.g. {message[:150]!r}; "
    result.seconds = time.perf_counter() - started
    return result


# -- failure scenarios (MLTrack only) --------------------------------------------------------------


def run_disk_full(scenario: Scenario, points: int, template: Path, tmp: Path, timeout: float) -> list[Result]:
    """The spool's file system fills up mid-loop: SpoolFullError at the call, never SIGBUS."""
    from mltrack.storage.spool import SEGMENT_BYTES, SEGMENT_SLOTS

    extra = max(2, points // 2)
    total = SEGMENT_SLOTS + extra  # the call for step SEGMENT_SLOTS needs the second segment
    result = Result(scenario, "mltrack", total)
    folder, uri = new_store(template, tmp, scenario.name)
    mount_point = folder / "tmpfs"
    mount_point.mkdir()
    started = time.perf_counter()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_FULL_MB}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = (mounted.stderr or mounted.stdout).strip() or f"exit {mounted.returncode}"
        result.skipped = f"cannot mount a tmpfs here ({reason[:120]})"
        print(f"  {scenario.name}: skipped: {result.skipped}", flush=True)
        return [result]
    child: Child | None = None
    try:
        data_dir = mount_point / "mltrack-data"
        data_dir.mkdir()
        filler = mount_point / "filler"
        stat = os.statvfs(mount_point)
        filler_bytes = stat.f_bavail * stat.f_frsize - SEGMENT_BYTES - FILL_MARGIN
        fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.posix_fallocate(fd, 0, filler_bytes)
        finally:
            os.close(fd)
        spec = {
            "tracker": "mltrack",
            "scenario": scenario.name,
            "uri": uri,
            "points": total,
            "after": "sleep",
            "sleep_s": 3600,
            "filler": str(filler),
        }
        child = Child(spec, child_env(data_dir, uri), folder)
        result.run_id = child.run_id(timeout)
        child.wait_calls(SEGMENT_SLOTS + extra // 2, timeout)  # half way through what follows the refusal
        child.send(signal.SIGKILL)
        result.notes += child.wait_exit(timeout)[1]
        child.stop()
        child.record(result)
        record_sync(result, *run_sync(data_dir, uri, folder, timeout), data_dir)
        measure(result, uri)
    except Exception as exc:
        result.error = str(exc)
    finally:
        if child is not None:
            child.stop()
            child.record(result)
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
    seen = child.reader.seen if child is not None else []
    refusals = [line[len(SPOOL_FULL_PREFIX) :] for line in seen if line.startswith(SPOOL_FULL_PREFIX)]
    if refusals:
        step, _, message = refusals[0].partition(" ")
        detail = message.partition(" has no room ")[2] or message  # past the spool's long path
        result.notes += (
            f"SpoolFullError at the call for step {int(step):,} ({len(refusals)} call(s) refused, "
            f"filler deleted, step logged again): spool has no room {detail[:140]}; "
        )
    result.targets = [
        (
            f"{scenario.name}: a full spool raises SpoolFullError at the call",
            f"{len(refusals)} call(s) refused",
            len(refusals) >= 1,
        ),
        (
            f"{scenario.name}: the process dies by the SIGKILL, not SIGBUS",
            _exit_name(result.exit_code),
            result.exit_code == -signal.SIGKILL,
        ),
    ]
    result.seconds = time.perf_counter() - started
    return [result]


def _exit_name(code: int | None) -> str:
    if code is None:
        return "n/a"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


@dataclass
class Damage:
    """What was done to a spool, and what that destroyed of what its calls had accepted."""

    steps: frozenset[int]  # metric steps whose only copy was destroyed
    params: list[str]
    description: str


def _log_records(path: Path) -> list[tuple[int, int, dict[str, Any]]]:
    """(first byte, end, record) of each framed record of an undamaged spool log."""
    from mltrack.storage.spool import FRAME, MARKER

    data = path.read_bytes()
    records: list[tuple[int, int, dict[str, Any]]] = []
    offset = 0
    while offset + len(MARKER) + FRAME.size <= len(data) and data.startswith(MARKER, offset):
        start = offset + len(MARKER) + FRAME.size
        (length, _) = FRAME.unpack_from(data, offset + len(MARKER))
        if start + length > len(data):
            break  # cut short by the kill
        records.append((offset, start + length, json.loads(data[start : start + length])))
        offset = start + length
    return records


def _unsent_slots(folder: Path) -> dict[int, tuple[int, int]]:
    """Slot index -> (metric id, step) of every point the store has not confirmed."""
    from mltrack.storage.spool import SEGMENT_BITS, SLOT, WRITTEN

    unsent: dict[int, tuple[int, int]] = {}
    for segment in sorted(folder.glob("seg-*")):
        base = int(segment.name.split("-")[1]) << SEGMENT_BITS
        for number, (key_id, _, state, _, _, _, step) in enumerate(SLOT.iter_unpack(segment.read_bytes())):
            if state == WRITTEN:
                unsent[base + number] = (key_id, step)
    return unsent


def inflict_damage(folder: Path, rng: random.Random) -> Damage:
    """Garbage over the middle of the spool's log, its first segment truncated to an odd size;
    returns what of the accepted data had no other copy there (read before damaging)."""
    from mltrack.storage.spool import SLOT

    log = folder / "log"
    records = _log_records(log)
    unsent = _unsent_slots(folder)
    at = log.stat().st_size // 2
    garbage = bytes(rng.randrange(0xFF) for _ in range(GARBAGE_BYTES))  # never a record marker's 0xff
    with open(log, "r+b") as fh:
        fh.seek(at)
        fh.write(garbage)
    hit = [record for first, end, record in records if first < at + len(garbage) and end > at]
    lost_keys = {record["id"] for record in hit if "k" in record}  # a metric name: its points are unreadable
    segment = folder / "seg-000000"
    kept = (max(unsent, default=0) + 1) * 3 // 5  # slots kept whole: about the first 60 % of the points
    os.truncate(segment, kept * SLOT.size + 13)  # and 13 bytes of the next: a partial slot
    steps = frozenset(step for index, (key_id, step) in unsent.items() if index >= kept or key_id in lost_keys)
    params = [record["p"][0] for record in hit if "p" in record]
    kinds = ", ".join(next(iter(record)) for record in hit) or "nothing"
    return Damage(
        steps,
        params,
        f"{GARBAGE_BYTES} garbage bytes at byte {at:,} of the log (over record(s): {kinds}); "
        f"seg-000000 truncated to {kept * SLOT.size + 13:,} bytes ({kept:,} whole slots)",
    )


def run_damaged_spool(scenario: Scenario, points: int, template: Path, tmp: Path, timeout: float) -> list[Result]:
    """Two killed children; one spool damaged. Sync delivers the other completely, the damaged one
    as far as it can be read, and moves it to the quarantine with a report."""
    import mlflow

    folder, uri = new_store(template, tmp, scenario.name)
    data_dir = folder / "mltrack-data"
    env = {**child_env(data_dir, uri), "MLTRACK_FLUSH_INTERVAL_MS": "60000"}  # writers idle: all in the spools
    params = {f"p{i:02d}": f"value-{i}" for i in range(DAMAGED_PARAMS)}
    spec = {
        "tracker": "mltrack",
        "scenario": scenario.name,
        "uri": uri,
        "points": points,
        "after": "sleep",
        "sleep_s": 3600,
        "params": params,
    }
    results = {variant: Result(scenario, "mltrack", points, variant=variant) for variant in ("healthy", "damaged")}
    started = time.perf_counter()
    children = {variant: Child(spec, env, folder, tag=variant) for variant in results}  # both run at once
    try:
        for variant, child in children.items():
            results[variant].run_id = child.run_id(timeout)
        for child in children.values():
            child.wait_logged(timeout)
        for child in children.values():
            child.send(signal.SIGKILL)
        for variant, child in children.items():
            results[variant].notes += child.wait_exit(timeout)[1]
    except Exception as exc:
        for result in results.values():
            result.error = str(exc)
    finally:
        for child in children.values():
            child.stop()
    for variant, child in children.items():
        child.record(results[variant])
    if any(r.error is not None for r in results.values()):
        return list(results.values())

    damaged = results["damaged"]
    (spool,) = (data_dir / "spool" / damaged.run_id).iterdir()
    damage = inflict_damage(spool, random.Random(scenario.name))
    reports, note = run_sync(data_dir, uri, folder, timeout)
    client = mlflow.MlflowClient(uri)
    quarantine = data_dir / "quarantine" / "spools"
    for variant, result in results.items():
        record_sync(result, reports, note, data_dir)
        is_damaged = variant == "damaged"
        measure(result, uri, damage.steps if is_damaged else frozenset())
        expected = {k: v for k, v in params.items() if not (is_damaged and k in damage.params)}
        stored = client.get_run(result.run_id).data.params
        moved = sorted(quarantine.glob(f"{result.run_id}-*/report.json")) if quarantine.is_dir() else []
        result.targets.append(
            (
                f"{scenario.name} ({variant}): every param stored"
                + (" except those the damage destroyed" if is_damaged else ""),
                f"{len(stored)} of {len(params)} stored",
                stored == expected,
            )
        )
        if is_damaged:
            result.notes += f"damage: {damage.description}; destroyed {len(damage.steps):,} unsent point(s)"
            result.notes += f" and {len(damage.params)} param(s) {damage.params}; "
            where = f"quarantine/spools/{moved[0].parent.name}/report.json" if moved else "not quarantined"
            if moved:
                found = json.loads(moved[0].read_text())
                result.notes += (
                    f"moved to {where}: reason {_spool_file(found['reason'])[:160]!r}, "
                    f"{len(found['problems'])} problem(s), delivered {found['delivered']}; "
                )
            result.targets.append((f"{scenario.name} (damaged): spool quarantined with a report", where, bool(moved)))
        else:
            result.targets.append(
                (
                    f"{scenario.name} (healthy): delivered completely, not quarantined",
                    f"{len(moved)} quarantined",
                    not moved,
                )
            )
        result.seconds = time.perf_counter() - started
    return list(results.values())


def run_poison_record(scenario: Scenario, points: int, template: Path, tmp: Path, timeout: float) -> list[Result]:
    """The store refuses one param (it conflicts with a value set in the store directly): that
    record goes to the quarantine, everything else is stored."""
    import mlflow

    result = Result(scenario, "mltrack", points)
    folder, uri = new_store(template, tmp, scenario.name)
    data_dir = folder / "mltrack-data"
    spec = {
        "tracker": "mltrack",
        "scenario": scenario.name,
        "uri": uri,
        "points": points,
        "after": "sleep",
        "sleep_s": 3600,
        "params": POISON_PARAMS,
        "wait_go": True,
    }
    client = mlflow.MlflowClient(uri)
    started = time.perf_counter()
    child = Child(spec, child_env(data_dir, uri), folder, stdin=True)
    try:
        result.run_id = child.run_id(timeout)
        client.log_param(result.run_id, POISON_KEY, POISON_STORED)
        assert child.process.stdin is not None
        child.process.stdin.write(GO_LINE + "\n")
        child.process.stdin.flush()
        child.wait_calls(points // 2, timeout)
        child.send(signal.SIGKILL)
        result.notes += child.wait_exit(timeout)[1]
    except Exception as exc:
        result.error = str(exc)
    finally:
        child.stop()
    child.record(result)
    if result.error is not None:
        return [result]
    record_sync(result, *run_sync(data_dir, uri, folder, timeout), data_dir)
    measure(result, uri)
    run = client.get_run(result.run_id)
    refused_file = data_dir / "quarantine" / result.run_id / "refused.jsonl"
    refused = [json.loads(line) for line in refused_file.read_text().splitlines()] if refused_file.exists() else []
    kept = [r for r in refused if r.get("kind") == "param" and r.get("record") == [POISON_KEY, POISON_LOGGED]]
    expected = {**POISON_PARAMS, POISON_KEY: POISON_STORED}
    if kept:
        by = sorted({"the child's writer" if r.get("pid") == child.process.pid else "mltrack sync" for r in kept})
        result.notes += (
            f"refused param {POISON_KEY}={POISON_LOGGED!r} kept in quarantine/{result.run_id}/refused.jsonl "
            f"({len(kept)} line(s), written by {' and '.join(by)}); "
        )
    result.targets = [
        (
            f"{scenario.name}: every other param stored, the refused one not",
            ", ".join(f"{k}={v}" for k, v in sorted(run.data.params.items())),
            run.data.params == expected,
        ),
        (f"{scenario.name}: the refused record is in the quarantine", f"{len(kept)} line(s)", bool(kept)),
        (
            f"{scenario.name}: the run is tagged mltrack.refused",
            "tagged" if "mltrack.refused" in run.data.tags else "not tagged",
            "mltrack.refused" in run.data.tags,
        ),
    ]
    result.seconds = time.perf_counter() - started
    return [result]


FAILURE_RUNNERS = {"disk-full": run_disk_full, "damaged-spool": run_damaged_spool, "poison-record": run_poison_record}


# -- the report -----------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "[yellow]n/a[/]"
    return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"


def checks(result: Result, points: int) -> list[tuple[str, str, bool | None]]:
    """(target, measured, ok) for an MLTrack row."""
    out: list[tuple[str, str, bool | None]] = []
    name = result.scenario.name + (f" ({result.variant})" if result.variant else "")
    if result.skipped is not None:
        return [(f"{name}: ran", f"skipped: {result.skipped}", None)]
    if result.error is not None or result.lost is None:
        return [(f"{name}: ran", result.error or "no result", False)]
    if result.scenario.kind != "signal":
        # The failure scenarios check what happens to the data. Their µs/call is shown but is no
        # target: two children share the CPUs (damaged-spool), or the writer isolates a refused
        # record under the GIL while the loop runs (poison-record).
        beyond = " beyond what the damage destroyed" if result.destroyed is not None else ""
        out.append((f"{name}: accepted points lost{beyond} = 0", f"{result.lost:,} lost", result.lost == 0))
        return out + result.targets
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
    return out + result.targets


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
        ("damage", "right"),
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
        if is_ours and result.points != args.points:
            label += f" ({result.points:,})"
        if result.skipped is not None:
            table.add_row(result.scenario.name, label, "", "", "", "", f"[yellow]skipped: {result.skipped[:80]}[/]")
            continue
        if result.error is not None:
            table.add_row(result.scenario.name, label, "", "", "", "", f"[red]{result.error[:90]}[/]", *[""] * 4, "")
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
            "" if result.destroyed is None else f"{result.destroyed:,} destroyed",
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
            "'+N in flight' = stored points whose call had not returned when the process died; "
            "'damage' = accepted points whose only copy the damage inflicted on the spool destroyed (not in 'lost'); "
            "(N) after mltrack = points that scenario logs instead of --points."
        )
    notes = [(r, r.notes.strip("; ")) for r in results if r.notes]
    if notes:
        console.print()
        console.print(f"[bold]Notes[/] ($TMP = {args.tmp_dir})")
        for result, note in notes:
            console.print(f"  {result.scenario.name} / {result.label}: {note.replace(args.tmp_dir, '$TMP')}")
    console.print()
    targets = Table(title="MLTrack targets", header_style="bold")
    for column in ("target", "measured", "result"):
        targets.add_column(column)
    for result in results:
        if result.tracker != "mltrack":
            continue
        for target, measured, ok in checks(result, args.points):
            targets.add_row(target, measured, _verdict(ok))
        if result.error is None and result.skipped is None:
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


def print_progress(result: Result) -> None:
    if result.skipped is not None:
        outcome = f"SKIPPED {result.skipped}"
    elif result.error:
        outcome = f"ERROR {result.error}"
    else:
        outcome = (
            f"stored {result.stored or 0:>6,}  lost {result.lost or 0:>6,}  {result.status:<8}  "
            f"{result.per_call_us or 0:,.2f} µs/call"
            + ("" if result.destroyed is None else f"  ({result.destroyed:,} destroyed by the damage)")
        )
    line = f"  {result.scenario.name:<14} {result.label:<17} logged {result.logged:>6,}  {outcome}"
    print(f"{line}  ({result.seconds:.1f}s)", flush=True)


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
    args.tmp_dir = str(tmp)
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
            if scenario.kind != "signal":  # MLTrack only: MLflow has no spool to fill, damage or quarantine
                if "mltrack" in args.trackers:
                    runner = FAILURE_RUNNERS[scenario.kind]
                    for result in runner(scenario, args.points, template, tmp, args.timeout):
                        results.append(result)
                        print_progress(result)
                continue
            for tracker in args.trackers:
                points = args.points if tracker == "mltrack" else args.mlflow_points
                result = run_scenario(scenario, tracker, points, template, tmp, args.timeout)
                results.append(result)
                print_progress(result)
        report(results, args, time.perf_counter() - started)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
