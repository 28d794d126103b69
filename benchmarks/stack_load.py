"""Many training processes logging at once to the team stack, against MLflow's async logging.

The stack, all real and on 127.0.0.1: a throwaway PostgreSQL cluster, ``mlflow server`` on it
with ``--workers 1`` and then ``--workers 4``, and a real ``mltrack ui`` process pointed at the
server. Every scenario gets a fresh copy of a migrated database and a fresh server on it.

Each scenario starts ``P`` training processes (``--procs``, default 16). A process imports its
client, then waits at a barrier so that all start together; then it starts a run, logs 20 params
and 5 tags, ``--points`` metric points (default 10,000: ``--keys`` metrics per step, 4 by default,
so 2,500 steps) as fast as it can, uploads a small artifact and ends the run. Two clients do the
same work:

* **mltrack**: ``mltrack.log_metrics(...)``; leaving ``with mltrack.start_run()`` returns once the
  store has confirmed every point (the writer's flush), so that moment is "durable in the store".
* **mlflow-async**: plain MLflow with ``synchronous=False`` on every params/tags/metrics call (MLflow's
  own async logging, as it comes: one request per call, 10 at a time), then
  ``mlflow.flush_async_logging()`` and ``end_run``. A batch its queue cannot send is logged on
  stderr and dropped; the benchmark counts those lines.
* **mlflow-async-buffered** (``--clients``, not run by default): the same with
  ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1``, which makes MLflow's queue merge calls into
  requests of up to 1,000 items.

While a scenario runs, this process requests the UI's runs page (``/api/runs`` of the scenario's
experiment) and a chart (``/api/metrics/history`` of up to 4 of its runs) once per ``--ui-interval``
second (1 s), through the real ``mltrack ui`` process. With ``--ui-store database`` the UI reads
the scenario's PostgreSQL database itself (as a team's UI on a read replica would) instead of
going through the tracking server the jobs write to.

Reported per scenario (wall clock, from the barrier's release):

* **durable s**: until the last process's run has every point confirmed by the store;
* **loop s**: until the last process's last logging call returned (the time the training code
  spends in logging calls, at most);
* **lost / dup**: points missing from / duplicated in the store, read back with
  ``MlflowClient.get_metric_history`` for every run and key (must be 0 / 0); params, tags and the
  artifact are checked too;
* **ingest**: points per second into the store (points / durable s);
* **UI p50 / p99**: latencies of the UI's requests made during the load.

A scenario still running after ``--deadline`` seconds (600) is cut off: its processes are killed,
its time shows as "> deadline", and what reached the store by then is counted.

It ends with the ratio MLflow / MLTrack of the time to durable for each (workers, processes),
measured in the same run, and how the time grows from 1 to 4 to 16 processes (``--scaling``).
The script always exits 0 unless a point was lost: it is a report.

``--train-nice 19`` runs the training processes (and their writer processes) at the lowest CPU
priority: on one machine, the stand-in for a team whose jobs run on machines of their own while the
server, the database and the UI share one host.

Run:  .venv/bin/python benchmarks/stack_load.py [--procs 16] [--points 10000] [--workers 1,4] [--train-nice 19]
      small:  .venv/bin/python benchmarks/stack_load.py --procs 4 --points 2000 --workers 1 --scaling 4
Needs PostgreSQL (``make install`` installs the Debian package).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

CLIENTS = ("mltrack", "mlflow-async", "mlflow-async-buffered")
DEFAULT_CLIENTS = "mltrack,mlflow-async"
# MLflow's async queue sends one request per logging call unless told to wait and merge them
BUFFERING_S = "1"
MLFLOW_FAILED = "Failed to log run data"
MAX_PROBLEMS = 6  # printed per scenario (all of them are in --json)
PARAMS_PER_RUN = 20
TAGS_PER_RUN = 5
ARTIFACT = "report.txt"
CHILD_TIMEOUT_S = 1800.0


# -- one training process ------------------------------------------------------------------------


def child(spec_path: str) -> None:
    """A training process: import the client, wait at the barrier, log, report timings as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    index, keys, steps = spec["index"], spec["keys"], spec["steps"]
    params = {f"param_{i}": f"value-{index}-{i}" for i in range(PARAMS_PER_RUN)}
    tags = {f"tag_{i}": f"t{i}" for i in range(TAGS_PER_RUN)}
    artifact = Path(spec["folder"]) / f"{ARTIFACT}.{index}" / ARTIFACT
    artifact.parent.mkdir(parents=True)
    artifact.write_text(f"process {index}: {steps} steps of {keys} metrics\n" * 20)
    names = [f"metric_{k}" for k in range(keys)]
    if spec["client"] == "mltrack":
        import mltrack

        mltrack.set_experiment(spec["experiment"])
        _barrier(spec)
        start = time.monotonic()
        with mltrack.start_run(run_name=f"proc-{index}") as run:
            run_started = time.monotonic()
            Path(spec["run_file"]).write_text(run.run_id)
            mltrack.log_params(params)
            mltrack.set_tags(tags)
            for step in range(steps):
                mltrack.log_metrics({name: 1.0 / (step + 1) + k for k, name in enumerate(names)}, step=step)
            loop_done = time.monotonic()
            mltrack.log_artifact(artifact)
            artifact_done = time.monotonic()
        durable = time.monotonic()
        run_id = run.run_id
    else:
        import mlflow

        mlflow.set_experiment(spec["experiment"])
        _barrier(spec)
        start = time.monotonic()
        with mlflow.start_run(run_name=f"proc-{index}") as active:
            run_started = time.monotonic()
            Path(spec["run_file"]).write_text(active.info.run_id)
            mlflow.log_params(params, synchronous=False)
            mlflow.set_tags(tags, synchronous=False)
            for step in range(steps):
                metrics = {name: 1.0 / (step + 1) + k for k, name in enumerate(names)}
                mlflow.log_metrics(metrics, step=step, synchronous=False)
            loop_done = time.monotonic()
            mlflow.log_artifact(str(artifact))
            artifact_done = time.monotonic()
            mlflow.flush_async_logging()
        durable = time.monotonic()
        run_id = active.info.run_id
    moments = {"start": start, "run_started": run_started, "loop_done": loop_done, "artifact_done": artifact_done}
    print(json.dumps({"run_id": run_id, **moments, "durable": durable}))


def _barrier(spec: dict[str, Any]) -> None:
    Path(spec["ready"]).touch()
    go = Path(spec["go"])
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark never released the barrier")
        time.sleep(0.005)


# -- the UI probe --------------------------------------------------------------------------------


@dataclass
class UIProbe:
    """Requests the runs page and a chart every ``interval`` seconds until stopped."""

    ui_url: str
    experiment_id: str
    key: str
    interval: float
    samples: dict[str, list[float]] = field(default_factory=lambda: {"runs": [], "chart": []})
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ui-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _get(self, kind: str, path: str) -> Any:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(self.ui_url + path, timeout=60) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.errors.append(f"{kind}: {exc}")
            return None
        self.samples[kind].append(time.perf_counter() - started)
        return body

    def _loop(self) -> None:
        run_ids: list[str] = []
        while not self._stop.is_set():
            tick = time.monotonic()
            page = self._get("runs", f"/api/runs?experiment_ids={self.experiment_id}&page_size=100")
            if page:
                run_ids = [row["run_id"] for row in page["runs"]][:4] or run_ids
            if run_ids:
                self._get("chart", f"/api/metrics/history?run_ids={','.join(run_ids)}&keys={self.key}&max_points=1000")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - tick)))


# -- one scenario --------------------------------------------------------------------------------


@dataclass
class Result:
    client: str
    workers: int
    procs: int
    points: int
    durable_s: float
    loop_s: float
    lost: int
    duplicated: int
    problems: list[str]
    ui: dict[str, list[float]]
    ui_errors: list[str]
    timed_out: bool = False

    @property
    def ingest(self) -> float:
        """Points per second into the store (by the deadline, for a scenario cut off there)."""
        return (self.points - self.lost) / self.durable_s if self.durable_s > 0 else 0.0


def _env(client: str, tracking_uri: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    if client == "mlflow-async-buffered":
        env["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = BUFFERING_S
    if client == "mltrack":
        env["MLTRACK_TRACKING_URI"] = tracking_uri
        env["MLTRACK_DATA_DIR"] = str(data_dir)
        # the same work for both clients: no sampled system metrics on top of the points
        env["MLTRACK_PLUGINS__SYSTEM__ENABLED"] = "0"
    return env


def _nice(level: int) -> list[str]:
    """The training processes (and the writer processes they start) at a lower CPU priority."""
    return ["nice", "-n", str(level)] if level else []


def run_scenario(
    client: str, workers: int, procs: int, args: argparse.Namespace, tracking_uri: str, ui_url: str, tmp: Path
) -> Result:
    from mlflow import MlflowClient

    steps = args.points // args.keys
    folder = tmp / f"{client}-w{workers}-p{procs}-{uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    experiment = f"load-{folder.name}"
    mlflow_client = MlflowClient(tracking_uri)
    experiment_id = mlflow_client.create_experiment(experiment)
    go = folder / "go"
    env = _env(client, tracking_uri, folder / ".mltrack")
    children = []
    for index in range(procs):
        spec = folder / f"spec-{index}.json"
        spec.write_text(
            json.dumps(
                {
                    "client": client,
                    "index": index,
                    "keys": args.keys,
                    "steps": steps,
                    "experiment": experiment,
                    "folder": str(folder),
                    "ready": str(folder / f"ready-{index}"),
                    "run_file": str(folder / f"run-{index}"),
                    "go": str(go),
                }
            )
        )
        out = (folder / f"child-{index}.out").open("w")
        err = (folder / f"child-{index}.err").open("w")
        children.append(
            subprocess.Popen(
                [*_nice(args.train_nice), sys.executable, __file__, "--child", str(spec)],
                stdout=out,
                stderr=err,
                env=env,
                cwd=folder,
            )
        )
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not all((folder / f"ready-{i}").exists() for i in range(procs)):
        failed = [c for c in children if c.poll() is not None]
        if failed or time.monotonic() > deadline:
            raise SystemExit(f"a training process failed to start: see {folder}/child-*.err")
        time.sleep(0.05)
    probe = UIProbe(ui_url, experiment_id, "metric_0", args.ui_interval)
    probe.start()
    released = time.monotonic()
    go.touch()
    timed_out = False
    try:
        for process in children:
            process.wait(max(0.1, released + args.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        probe.stop()
        for process in children:
            if process.poll() is None:
                process.kill()
                process.wait(60)
    reports = []
    problems = []
    for index, process in enumerate(children):
        text = (folder / f"child-{index}.out").read_text().strip().splitlines()
        if timed_out and not text:
            continue  # cut off at the deadline: what it sent is counted below
        if process.returncode != 0 or not text:
            tail = (folder / f"child-{index}.err").read_text()[-1500:]
            problems.append(f"process {index} exited {process.returncode}: {tail}")
            continue
        reports.append(json.loads(text[-1]))
        # MLflow's async queue logs a batch it could not send and drops it; the run still ends
        failures = [line for line in (folder / f"child-{index}.err").read_text().splitlines() if MLFLOW_FAILED in line]
        if failures:
            problems.append(f"process {index}: {len(failures)} batch(es) dropped, e.g. {failures[0][-300:]}")
    durable = max((r["durable"] for r in reports), default=released) - released
    loop = max((r["loop_done"] for r in reports), default=released) - released
    if timed_out:
        durable = args.deadline
        problems.append(f"{procs - len(reports)} of {procs} processes were still logging at the deadline")
    run_files = [folder / f"run-{i}" for i in range(procs)]
    run_ids = [f.read_text() for f in run_files if f.exists()]
    lost, duplicated, read_problems = verify(mlflow_client, run_ids, args.keys, steps, finished=not timed_out)
    lost += (procs - len(run_ids)) * steps * args.keys
    result = Result(
        client,
        workers,
        procs,
        procs * steps * args.keys,
        durable,
        loop,
        lost,
        duplicated,
        problems + read_problems,
        probe.samples,
        probe.errors,
        timed_out,
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def verify(client: Any, run_ids: list[str], keys: int, steps: int, finished: bool) -> tuple[int, int, list[str]]:
    """Points lost (or, cut off at the deadline, not there yet) and duplicated, read back from
    the store; other data checked too."""
    lost = duplicated = 0
    problems = []
    for run_id in run_ids:
        run = client.get_run(run_id)
        if finished and run.info.status != "FINISHED":
            problems.append(f"run {run_id} is {run.info.status}")
        if len(run.data.params) != PARAMS_PER_RUN:
            problems.append(f"run {run_id} has {len(run.data.params)} params of {PARAMS_PER_RUN}")
        if sum(1 for k in run.data.tags if k.startswith("tag_")) != TAGS_PER_RUN:
            problems.append(f"run {run_id} lacks some of its {TAGS_PER_RUN} tags")
        if [f.path for f in client.list_artifacts(run_id)] != [ARTIFACT]:
            problems.append(f"run {run_id} lacks its artifact")
        for k in range(keys):
            history = client.get_metric_history(run_id, f"metric_{k}")
            distinct = {point.step for point in history}
            lost += steps - len(distinct & set(range(steps)))
            duplicated += len(history) - len(distinct)
    return lost, duplicated, problems


# -- the stack -----------------------------------------------------------------------------------


class UIProcess:
    """A real ``mltrack ui`` process pointed at the tracking server (or, with ``--ui-store
    database``, at the scenario's PostgreSQL database)."""

    def __init__(self, tracking_uri: str, log: Path) -> None:
        from mltrack.testing.servers import free_port, wait_for_http

        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
        mltrack = Path(sys.executable).parent / "mltrack"
        self.process = subprocess.Popen(
            [str(mltrack), "ui", "--tracking-uri", tracking_uri, "--port", str(self.port), "--no-open"],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        wait_for_http(f"{self.url}/api/experiments", 120, self.process)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def run_all(args: argparse.Namespace) -> list[Result]:
    """Every scenario on a fresh copy of a migrated database, with a fresh ``mlflow server`` on
    it: no scenario inherits another's rows or requests still in flight."""
    from mltrack.testing.servers import MlflowServer, PostgresServer, free_port

    # PostgreSQL runs as the postgres user: its folder must be outside a 0700 tree.
    tmp = Path(tempfile.mkdtemp(prefix="mltrack-stack-load-"))
    os.chmod(tmp, 0o755)
    results: list[Result] = []
    postgres = PostgresServer(tmp / "cluster").start()
    try:
        MlflowServer(postgres.create_database("load_template"), tmp / "template" / "artifacts").start().stop()
        for workers in args.workers:
            port = free_port()  # the same address for every server of this series: the UI keeps it
            ui: UIProcess | None = None
            try:
                for procs in args.scaling:
                    for client in args.clients:
                        name = f"load_{uuid4().hex[:12]}"
                        database = postgres.create_database(name, template="load_template")
                        server = MlflowServer(database, tmp / name / "artifacts", port=port, workers=workers).start()
                        own_ui: UIProcess | None = None
                        try:
                            if args.ui_store == "database":
                                # the UI reads the scenario's database itself (a read replica in a team's
                                # set-up), not through the server the jobs write to
                                own_ui = UIProcess(database, tmp / f"ui-{name}.log")
                                ui_url = own_ui.url
                            else:
                                if ui is None:
                                    ui = UIProcess(server.url, tmp / f"ui-w{workers}.log")
                                ui_url = ui.url
                            result = run_scenario(client, workers, procs, args, server.url, ui_url, tmp)
                        finally:
                            if own_ui is not None:
                                own_ui.stop()
                            server.stop()
                        print("  " + row(result), flush=True)
                        results.append(result)
            finally:
                if ui is not None:
                    ui.stop()
    finally:
        postgres.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    return results


# -- the report ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


HEADER = (
    f"{'client':<22}{'workers':>8}{'procs':>6}{'points':>9}{'durable s':>11}{'loop s':>9}"
    f"{'lost':>6}{'dup':>5}{'ingest pt/s':>13}{'UI runs p50/p99 ms':>20}{'UI chart p50/p99 ms':>21}"
)


def row(r: Result) -> str:
    runs, chart = r.ui["runs"], r.ui["chart"]
    return (
        f"{r.client:<22}{r.workers:>8}{r.procs:>6}{r.points:>9}"
        f"{('>' if r.timed_out else '') + f'{r.durable_s:.2f}':>11}{r.loop_s:>9.2f}"
        f"{r.lost:>6}{r.duplicated:>5}{r.ingest:>13,.0f}"
        f"{_ms(percentile(runs, 0.5)) + '/' + _ms(percentile(runs, 0.99)):>20}"
        f"{_ms(percentile(chart, 0.5)) + '/' + _ms(percentile(chart, 0.99)):>21}"
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(f"machine: {os.cpu_count()} CPU cores (training processes, mlflow server, PostgreSQL and the UI share them)")
    reads = "the PostgreSQL database directly" if args.ui_store == "database" else "through the tracking server"
    print(f"UI reads: {reads}")
    if args.train_nice:
        print(f"training processes at nice {args.train_nice}: the server, PostgreSQL and the UI come first")
    print(HEADER)
    for r in results:
        print(row(r))
    for r in results:
        problems = r.problems[:MAX_PROBLEMS] + [f"... {len(r.problems) - MAX_PROBLEMS} more"] * (
            len(r.problems) > MAX_PROBLEMS
        )
        for problem in problems + r.ui_errors[:3]:
            print(f"  ! {r.client} w{r.workers} p{r.procs}: {' '.join(problem.split())[:300]}")
    print()
    by_key = {(r.client, r.workers, r.procs): r for r in results}
    names = {"mlflow-async": "MLflow async", "mlflow-async-buffered": f"MLflow async buffered {BUFFERING_S}s"}
    for workers in args.workers:
        for procs in args.scaling:
            ours = by_key.get(("mltrack", workers, procs))
            for peer, name in names.items():
                theirs = by_key.get((peer, workers, procs))
                if ours and theirs and ours.durable_s > 0:
                    more = ">" if theirs.timed_out else ""
                    print(
                        f"workers {workers}, {procs:>2} processes: {name} / MLTrack time to durable = "
                        f"{more}{theirs.durable_s / ours.durable_s:.2f}x "
                        f"({more}{theirs.durable_s:.1f}s vs {ours.durable_s:.1f}s)"
                    )
    for client in args.clients:
        for workers in args.workers:
            series = [by_key[(client, workers, p)] for p in args.scaling if (client, workers, p) in by_key]
            if len(series) > 1:
                growth = ", ".join(f"{r.procs} procs {'>' if r.timed_out else ''}{r.durable_s:.1f}s" for r in series)
                print(f"scaling {client}, workers {workers}: {growth}")
    everything = [s for r in results if r.client == "mltrack" for s in r.ui["runs"] + r.ui["chart"]]
    if everything:
        print(f"UI p99 over every request during MLTrack's load: {_ms(percentile(everything, 0.99))} ms")


def main() -> None:
    def numbers(text: str) -> list[int]:
        return [int(part) for part in text.split(",") if part.strip()]

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=16, help="training processes of the main scenario (16)")
    parser.add_argument("--points", type=int, default=10_000, help="metric points per process (10,000)")
    parser.add_argument("--keys", type=int, default=4, help="metrics logged per step (4)")
    parser.add_argument("--workers", type=numbers, default=[1, 4], help="mlflow server workers, e.g. 1,4 (default)")
    parser.add_argument(
        "--scaling", type=numbers, default=None, help="process counts to run (default 1,4,<procs>; --procs alone: 16)"
    )
    parser.add_argument(
        "--clients",
        default=DEFAULT_CLIENTS,
        help=f"comma-separated, of {', '.join(CLIENTS)} (default: {DEFAULT_CLIENTS})",
    )
    parser.add_argument("--ui-interval", type=float, default=1.0, help="seconds between UI requests (1)")
    parser.add_argument(
        "--train-nice",
        type=int,
        default=0,
        help="run the training processes at this nice level (e.g. 19): on one machine, as if they had "
        "machines of their own and the UI, server and database shared theirs (0: same priority)",
    )
    parser.add_argument(
        "--ui-store",
        choices=["server", "database"],
        default="server",
        help="what the UI reads: the tracking server the jobs write to (server, default) or the "
        "PostgreSQL database directly, as a team's UI on a read replica would (database)",
    )
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="seconds a scenario may take; then it is cut off (600)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, spools)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    args.clients = [c for c in args.clients.split(",") if c]
    unknown = set(args.clients) - set(CLIENTS)
    if unknown:
        parser.error(f"--clients: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CLIENTS)}")
    if args.scaling is None:
        args.scaling = sorted({1, 4, args.procs})
    # stopped with SIGTERM, the servers and training processes are stopped too (the finally blocks)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    results = run_all(args)
    report(results, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "client": r.client,
                        "workers": r.workers,
                        "procs": r.procs,
                        "points": r.points,
                        "durable_s": r.durable_s,
                        "loop_s": r.loop_s,
                        "lost": r.lost,
                        "duplicated": r.duplicated,
                        "problems": r.problems,
                        "timed_out": r.timed_out,
                        "ui_runs_s": r.ui["runs"],
                        "ui_chart_s": r.ui["chart"],
                        "ui_errors": r.ui_errors,
                    }
                    for r in results
                ],
                indent=2,
            )
        )
    if any(r.lost or r.timed_out for r in results if r.client == "mltrack"):
        sys.exit(1)


if __name__ == "__main__":
    main()
