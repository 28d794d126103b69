"""Randomised SIGKILL trials: whenever a process dies, `mltrack sync` leaves every accepted call
stored exactly once and no run RUNNING.

A trial is one child interpreter that works through several runs (``start_run``,
``log_params``, a loop of ``log_metric``/``log_metrics``, ``log_artifact``, ``end_run``) and
appends one line to a journal after each call returns. The journal is written with
``O_APPEND`` + ``os.write``, so what it holds survives the SIGKILL in the page cache: it is the
exact list of calls that MLTrack accepted. The parent kills the child at a moment drawn from
``random.Random(<phase>-<seed>)``, aimed at one phase of one run.

Starting Python and importing MLflow costs ~3 s of CPU per process, for the child and for
`mltrack sync` alike, so each test case runs the four trials of one phase one after the other
against the same store and data folder, then runs `mltrack sync --json` once for all of them.
Each child after the first also replays the spools its predecessors left when it starts its
first run (and may itself be killed doing so), as the next process on a store does.

The replay trials kill `mltrack sync` itself, twice, part-way through sending a large spool,
then run it to completion: the last replay must finish what the others began, exactly once.

A failure message names the phase, the seed and where the kill landed, e.g.
``end_run seed 2: killed 41 ms after 'begin end_run 1'``.

One test is an expected failure (strict): it reproduces, deterministically, a torn metric slot
that a kill inside ``log_metric`` can leave (see its reason).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytest
from conftest import run_cli
from mlflow.entities import ViewType

RUNS = 3  # runs per child: one child start (~3 s of CPU) serves every phase of several runs
POINTS = 300  # `loss` steps per run; `acc` and `lr` are logged together every EVERY steps
EVERY = 10
LAYERS = 150  # extra params in the log_params call: a realistic config, and a call long enough to hit
STEP_S = 0.0002  # a training step between metric calls: without one, the loop is over before a kill lands
ARTIFACT = "payload.txt"
PHASES = ("start_run", "log_params", "log_metric", "log_artifact", "end_run")
TRIALS_PER_PHASE = 4
REPLAY_POINTS = 10_000  # 10 batches of 1,000: `mltrack sync` takes long enough to be killed mid-way
SYNC_KILLS = 2  # replays killed before the one that is let finish
MLTRACK_CLI = str(Path(sys.executable).parent / "mltrack")

# How long after a phase's "begin" line the kill may come, in seconds: about the phase's length
# on this machine (start_run of the first run also opens the store and replays what earlier
# children left). A kill aimed at a phase lands in it or, on a busy machine, a little later.
KILL_WINDOW_S = {"start_run": 0.08, "first start_run": 0.5, "log_params": 0.003, "log_artifact": 0.08, "end_run": 0.15}

CHILD = """
import os, sys, time
journal, artifact, runs, points, every, layers = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
step_s = float(sys.argv[7])
fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def note(*words):
    # one write(2) per line: all of it in the page cache, or none, when the kill comes
    os.write(fd, (" ".join(map(str, words)) + f" {time.monotonic():.6f}\\n").encode())

import mlflow  # as a training script's imports would: start_run is then about tracking, not imports
import mltrack

for r in range(runs):
    note("begin", "start_run", r)
    run = mltrack.start_run(f"trial-{r}")
    note("start_run", r, run.run_id)
    note("begin", "log_params", r)
    mltrack.log_params({"run": r, "lr": f"0.{r + 1}", "layer": {f"l{k}": 8 * k for k in range(layers)}})
    note("log_params", r)
    note("begin", "log_metric", r)
    for i in range(points):
        mltrack.log_metric("loss", 1.0 / (i + 1), step=i)
        note("log_metric", r, i)
        if i % every == 0:
            mltrack.log_metrics({"acc": i / points, "lr": 0.1 * (r + 1)}, step=i)
            note("log_metrics", r, i)
        time.sleep(step_s)
    note("begin", "log_artifact", r)
    mltrack.log_artifact(artifact)
    note("log_artifact", r)
    note("begin", "end_run", r)
    mltrack.end_run()
    note("end_run", r)
note("done")
time.sleep(600)  # the kill comes even when it is aimed after the last call
"""

REPLAY_CHILD = """
import os, sys, time
journal, points = sys.argv[1], int(sys.argv[2])
fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
import mltrack

run = mltrack.start_run("replayed")
os.write(fd, f"start_run 0 {run.run_id}\\n".encode())
mltrack.log_params({"points": points})
os.write(fd, b"log_params 0\\n")
for i in range(points):
    mltrack.log_metric("loss", 1.0 / (i + 1), step=i)
    os.write(fd, f"log_metric 0 {i}\\n".encode())
os.write(fd, b"logged\\n")
time.sleep(600)
"""


# -- the journal ----------------------------------------------------------------------------------


@dataclass
class JournaledRun:
    """What a journal says about one run: the calls that returned."""

    index: int
    run_id: str | None = None
    params: bool = False
    steps: dict[str, set[int]] = field(default_factory=lambda: {"loss": set(), "acc": set(), "lr": set()})
    artifact: bool = False
    ended: bool = False


@dataclass
class Journal:
    runs: dict[int, JournaledRun]
    last_line: str
    last_time: float | None  # time.monotonic() of the last line (one clock for all processes)
    last_begin: str
    last_begin_time: float | None

    @property
    def started(self) -> int:
        """How many runs the child began to start (created in the store or not)."""
        return len(self.runs)


def read_journal(path: Path) -> Journal:
    runs: dict[int, JournaledRun] = {}
    journal = Journal(runs, "nothing", None, "nothing", None)
    text = path.read_text() if path.exists() else ""
    for line in text.split("\n")[:-1]:  # a line without its newline was cut by the kill
        words = line.split()
        stamp = float(words.pop()) if "." in words[-1] else None
        journal.last_line, journal.last_time = " ".join(words), stamp
        if words[0] == "begin":
            journal.last_begin, journal.last_begin_time = journal.last_line, stamp
            runs.setdefault(int(words[2]), JournaledRun(int(words[2])))
            continue
        if words[0] in ("done", "logged"):
            continue
        run = runs.setdefault(int(words[1]), JournaledRun(int(words[1])))
        if words[0] == "start_run":
            run.run_id = words[2]
        elif words[0] == "log_params":
            run.params = True
        elif words[0] == "log_metric":
            run.steps["loss"].add(int(words[2]))
        elif words[0] == "log_metrics":
            run.steps["acc"].add(int(words[2]))
            run.steps["lr"].add(int(words[2]))
        elif words[0] == "log_artifact":
            run.artifact = True
        elif words[0] == "end_run":
            run.ended = True
    return journal


def landing(journal: Journal, killed_at: float) -> str:
    """Where the kill landed, for failure messages: relative to the last phase begun."""
    if journal.last_begin_time is None:
        return "killed before the first call"
    after = f"killed {1000 * (killed_at - journal.last_begin_time):.1f} ms after {journal.last_begin!r}"
    return after if journal.last_line == journal.last_begin else f"{after} (last line {journal.last_line!r})"


class JournalWatcher:
    """Follows a growing journal, so the parent can kill right after a chosen line appears."""

    def __init__(self, path: Path, process: subprocess.Popen[str]) -> None:
        path.touch()
        self.fd = os.open(path, os.O_RDONLY)
        self.process = process
        self.offset = 0
        self.pending = b""

    def close(self) -> None:
        os.close(self.fd)

    def wait_for(self, line: str, timeout: float = 120) -> bool:
        """True once a line starting with ``line`` is in the journal; False if the child exited."""
        wanted = (line + " ").encode()
        deadline = time.monotonic() + timeout
        grew = time.monotonic()
        while True:
            size = os.fstat(self.fd).st_size
            if size > self.offset:
                chunk = os.pread(self.fd, size - self.offset, self.offset)
                self.offset += len(chunk)
                grew = time.monotonic()
                complete, _, self.pending = (self.pending + chunk).rpartition(b"\n")
                if any(seen.startswith(wanted) or seen + b" " == wanted for seen in complete.split(b"\n")):
                    return True
            elif self.process.poll() is not None:
                return False
            assert time.monotonic() < deadline, f"the child never journaled {line!r}"
            # Short naps while lines are coming, so the kill follows the chosen line within a
            # fraction of a millisecond; longer ones while the child imports or waits on the store.
            time.sleep(0.0003 if time.monotonic() - grew < 0.2 else 0.005)


# -- processes ------------------------------------------------------------------------------------


def reap(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` if it still runs, and collect it."""
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=60)


def sync_reports() -> list[dict[str, Any]]:
    """Run `mltrack sync --json` to completion; its reports."""
    done = run_cli("sync", "--json")
    assert done.returncode == 0, f"mltrack sync failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    reports = json.loads(done.stdout)
    assert isinstance(reports, list), done.stdout
    for report in reports:
        assert report["error"] is None, report
    return reports


def assert_nothing_left_to_sync(data_dir: Path) -> None:
    assert sync_reports() == [], "a second `mltrack sync` still found something to send"
    root = data_dir / "spool"
    assert not root.is_dir() or not [p for p in root.glob("*/*") if p.is_dir()]


def quarantined_spools(data_dir: Path) -> list[dict[str, Any]]:
    """Reports of spools that replay judged damaged, except the one kind a plain kill may leave:
    a spool whose removal the kill interrupted after its log was deleted (everything in it was
    already stored, which the checks of the store confirm; replay cannot tell it from damage)."""
    folder = data_dir / "quarantine" / "spools"
    reports = [json.loads(p.read_text()) for p in folder.glob("*/report.json")] if folder.is_dir() else []
    return [r for r in reports if not any(str(p).endswith("/log: missing") for p in r["problems"])]


# -- checking the store against the journals ------------------------------------------------------


def expected_steps(key: str) -> range:
    return range(POINTS) if key == "loss" else range(0, POINTS, EVERY)


def expected_value(key: str, run: int, step: int) -> float:
    if key == "loss":
        return 1.0 / (step + 1)
    if key == "acc":
        return step / POINTS
    return 0.1 * (run + 1)


def expected_params(run: int) -> dict[str, str]:
    return {"run": str(run), "lr": f"0.{run + 1}", **{f"layer.l{k}": str(8 * k) for k in range(LAYERS)}}


def check_metric(client: mlflow.MlflowClient, run: JournaledRun, key: str, where: str) -> None:
    history = client.get_metric_history(run.run_id or "", key)
    stored = [m.step for m in history]
    assert len(stored) == len(set(stored)), f"{where}: duplicate {key} points: {sorted(stored)}"
    journaled = run.steps[key]
    missing = journaled - set(stored)
    assert not missing, f"{where}: {len(missing)} accepted {key} point(s) lost, steps {sorted(missing)[:10]}"
    # The call the kill interrupted may have reached the spool without being journaled: the
    # first step the journal lacks may be stored, and nothing beyond it.
    in_flight = [s for s in expected_steps(key) if s not in journaled][:1]
    extra = set(stored) - journaled - set(in_flight)
    assert not extra, f"{where}: {key} points stored that no call logged: {sorted(extra)[:10]}"
    for metric in history:
        assert metric.value == expected_value(key, run.index, metric.step), f"{where}: garbled {key} {metric}"


def check_store(uri: str, trials: list[tuple[Journal, str]], artifact: Path) -> None:
    """Every journaled call stored exactly once, and every run of the store ended."""
    client = mlflow.MlflowClient(uri)
    stored = {r.info.run_id: r for r in client.search_runs(["0"], run_view_type=ViewType.ALL, max_results=1000)}
    # runs whose start_run never returned are in the store without a journal line: look at all
    started = sum(journal.started for journal, _ in trials)
    assert len(stored) <= started, f"{len(stored)} runs in the store, but only {started} start_run calls made"
    for run_id, found in stored.items():
        status = found.info.status
        assert status in ("FINISHED", "KILLED"), f"run {run_id} ({found.info.run_name}) left {status}: {trials}"
        if status == "KILLED":
            detected_by = found.data.tags.get("mltrack.killed.detected_by", "")
            assert detected_by == "mltrack sync" or detected_by.startswith("replay by process"), found.data.tags
    for journal, where in trials:
        for run in journal.runs.values():
            if run.run_id is None:
                continue
            context = f"{where}, run {run.index}"
            assert run.run_id in stored, f"{context}: run {run.run_id} is not in the store"
            info, data = stored[run.run_id].info, stored[run.run_id].data
            if run.ended:
                assert info.status == "FINISHED", f"{context}: end_run returned, but the run is {info.status}"
            if run.params:
                assert data.params == expected_params(run.index), f"{context}: params {data.params}"
            for key in run.steps:
                check_metric(client, run, key, context)
            if run.artifact:
                files = {f.path: f.file_size for f in client.list_artifacts(run.run_id)}
                assert files == {ARTIFACT: artifact.stat().st_size}, f"{context}: artifacts {files}"


# -- the trials -----------------------------------------------------------------------------------


def kill_moment(phase: str, rng: random.Random) -> Callable[[JournalWatcher], bool]:
    """How to wait for the moment to kill at (returns False if the child ended first)."""
    run = rng.randrange(RUNS)
    if phase == "log_metric":
        # at once after a random call of the loop
        step = rng.randrange(POINTS)
        return lambda watcher: watcher.wait_for(f"log_metric {run} {step}")
    window = KILL_WINDOW_S["first start_run" if phase == "start_run" and run == 0 else phase]
    delay = rng.uniform(0, window)
    # log_params takes a few milliseconds: start the clock at the line written just before it
    line = f"start_run {run}" if phase == "log_params" else f"begin {phase} {run}"

    def wait(watcher: JournalWatcher) -> bool:
        if not watcher.wait_for(line):
            return False
        time.sleep(delay)
        return True

    return wait


def run_trial(phase: str, seed: int, folder: Path, artifact: Path) -> tuple[Journal, str]:
    """Start a child, kill it at the seed's moment; its journal and a description of the kill."""
    rng = random.Random(f"{phase}-{seed}")
    wait = kill_moment(phase, rng)
    journal_path = folder / f"journal-{seed}"
    args = [str(journal_path), str(artifact), str(RUNS), str(POINTS), str(EVERY), str(LAYERS), str(STEP_S)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        cwd=folder,
    )
    watcher = JournalWatcher(journal_path, child)
    try:
        reached = wait(watcher)
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
    finally:
        watcher.close()
        reap(child)
    assert reached, f"{phase} seed {seed}: the child exited {child.returncode} before the kill: {stderr[-3000:]}"
    assert child.returncode == -signal.SIGKILL, f"{phase} seed {seed}: exited {child.returncode}: {stderr[-3000:]}"
    journal = read_journal(journal_path)
    return journal, f"{phase} seed {seed}: {landing(journal, killed_at)}"


@pytest.mark.parametrize("phase", PHASES)
def test_sigkills_at_random_moments_of_a_phase_lose_no_accepted_call_and_leave_no_run_running(
    sqlite_uri: str, tmp_path: Path, phase: str
) -> None:
    data_dir = Path(os.environ["MLTRACK_DATA_DIR"])
    artifact = tmp_path / ARTIFACT
    artifact.write_bytes(random.Random(phase).randbytes(4096))
    trials = [run_trial(phase, seed, tmp_path, artifact) for seed in range(TRIALS_PER_PHASE)]
    print("\n".join(where for _, where in trials), file=sys.stderr)  # shown when the test fails

    sync_reports()
    assert quarantined_spools(data_dir) == [], f"a plain kill left a spool judged damaged: {trials}"
    check_store(sqlite_uri, trials, artifact)
    assert_nothing_left_to_sync(data_dir)


# -- a kill between the stores of one metric slot -------------------------------------------------

TORN_SLOT_CHILD = """
import os, signal, sys
from pathlib import Path
from mltrack.storage.spool import RunSpool

class KilledWhileConverted:
    def __float__(self):
        os.kill(os.getpid(), signal.SIGKILL)

root, run_id, uri = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
spool = RunSpool(root, run_id, uri)
for step in range(1, 11):
    spool.append_metric("loss", 1.0 / step, 1_700_000_000_000 + step, step)
spool.append_metric("loss", KilledWhileConverted(), 1_700_000_000_011, 11)  # this call never returns
"""


def test_a_kill_between_the_writes_of_one_metric_slot_replays_no_point_that_no_call_logged(
    sqlite_uri: str,
) -> None:
    # struct.pack_into writes the key id and the state byte, then converts the value: a value
    # whose conversion kills the process stops it exactly where an asynchronous SIGKILL lands in
    # a few percent of kills of a tight logging loop, every time instead of by chance.
    from mltrack.storage.spool import spool_root
    from mltrack.tracking.replay import replay_orphans

    data_dir = Path(os.environ["MLTRACK_DATA_DIR"])
    client = mlflow.MlflowClient(sqlite_uri)
    run_id = client.create_run("0").info.run_id
    child = subprocess.run(
        [sys.executable, "-c", TORN_SLOT_CHILD, str(spool_root(data_dir)), run_id, sqlite_uri],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    (report,) = replay_orphans(spool_root(data_dir), detected_by="mltrack sync")  # what `mltrack sync` runs
    assert report.error is None, report
    stored = sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, "loss"))
    assert stored == [(step, 1_700_000_000_000 + step, 1.0 / step) for step in range(1, 11)]


# -- killing the replay itself ---------------------------------------------------------------------


def metric_rows(db: Path, run_id: str) -> int:
    """Metric points of ``run_id`` in the sqlite store, read while `mltrack sync` writes them.

    Not a read-only connection: after a kill mid-transaction the first reader must roll the hot
    journal back, as any MLflow process opening the store would."""
    with closing(sqlite3.connect(db, timeout=30)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[0])


def kill_sync_at_random(rng: random.Random, mode: str, db: Path, run_id: str, cwd: Path) -> str:
    """Start `mltrack sync` and SIGKILL it: while it starts (``starting``), once the store holds
    a random number of the points (``sending``), or just after the last batch, while it settles
    the run and removes the spool (``settling``)."""
    stored = metric_rows(db, run_id)
    target = rng.randint(min(stored + 1, REPLAY_POINTS), REPLAY_POINTS) if mode == "sending" else REPLAY_POINTS
    delay = rng.uniform(0.1, 1.5)
    replay = subprocess.Popen(
        [MLTRACK_CLI, "sync", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
    )
    try:
        if mode == "starting":
            time.sleep(delay)
        else:
            deadline = time.monotonic() + 120
            while replay.poll() is None and metric_rows(db, run_id) < target:
                assert time.monotonic() < deadline, "mltrack sync made no progress"
                time.sleep(0.005)
        finished = replay.poll() is not None
        replay.send_signal(signal.SIGKILL)
        replay.communicate(timeout=60)
    finally:
        reap(replay)
    state = "had already finished" if finished else "killed"
    return f"sync {state} ({mode}) with {metric_rows(db, run_id)} of {REPLAY_POINTS} points stored"


@pytest.mark.parametrize("writer", ["idle", "delivering"])
def test_a_sync_killed_at_random_moments_is_completed_by_the_next_sync_exactly_once(
    sqlite_uri: str, tmp_path: Path, writer: str
) -> None:
    rng = random.Random(f"replay-{writer}")
    data_dir = Path(os.environ["MLTRACK_DATA_DIR"])
    db = Path(sqlite_uri.removeprefix("sqlite:///"))
    journal_path = tmp_path / "journal"
    env = dict(os.environ)
    if writer == "idle":
        # the child's writer never wakes: replay has every point to send
        env["MLTRACK_FLUSH_INTERVAL_MS"] = "60000"
    # otherwise it delivers (and marks slots sent) up to the kill, and replay sends the rest
    child = subprocess.Popen(
        [sys.executable, "-c", REPLAY_CHILD, str(journal_path), str(REPLAY_POINTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    watcher = JournalWatcher(journal_path, child)
    try:
        logged = watcher.wait_for("logged")
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
    finally:
        watcher.close()
        reap(child)
    assert logged, f"the child exited {child.returncode}: {stderr[-3000:]}"
    run_id = read_journal(journal_path).runs[0].run_id
    assert run_id is not None
    kills = [f"the child's writer had stored {metric_rows(db, run_id)} points"]
    # the first replay always dies mid-way through sending; the second at any moment
    for mode in ["sending", *(rng.choice(["starting", "sending", "settling"]) for _ in range(SYNC_KILLS - 1))]:
        kills.append(kill_sync_at_random(rng, mode, db, run_id, tmp_path))
    where = "; ".join(kills)
    print(where, file=sys.stderr)  # shown when the test fails

    reports = sync_reports()
    assert quarantined_spools(data_dir) == [], f"{where}: an interrupted replay left a spool judged damaged"
    assert [r["run_id"] for r in reports] in ([run_id], []), reports
    client = mlflow.MlflowClient(sqlite_uri)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED", where
    assert run.data.params == {"points": str(REPLAY_POINTS)}, where
    steps = sorted(m.step for m in client.get_metric_history(run_id, "loss"))
    assert steps == list(range(REPLAY_POINTS)), f"{where}: {len(steps)} points stored, {len(set(steps))} steps"
    assert_nothing_left_to_sync(data_dir)
