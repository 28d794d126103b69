"""What a training step pays for one logged metric point, in CPU of every process involved.

``log_overhead.py`` times the logging call; this times the *training loop*: a step of real work
(a ~10 µs numpy computation, or a small PyTorch CPU training step) followed by one ``log_metric``,
``--steps`` times (default 20,000), then ``end_run``. For each contender, in its own fresh process,
medians of ``--rounds`` rounds (default 5):

* **train CPU µs/step**: CPU time (user + system, all threads) of the training process from the
  first step until ``end_run`` returned, divided by the steps. A background *thread* writer's
  work is counted here, since it shares the process.
* **helper CPU µs/step**: CPU time, over the same interval, of the processes the contender caused:
  its child processes (psutil, recursively; e.g. wandb's service) and MLTrack's writer process.
* **over bare µs/pt**: (train CPU + helper CPU) minus the bare loop's, per logged point; the
  train-only part is also shown.
* **wall µs/step**: wall time of the loop (first step to last step returned).
* **durable s**: from the last step until the data is durable (``end_run`` returned).
* **peak RSS MB**: the training process's peak resident set (``ru_maxrss``).

Contenders: ``bare`` (no logging); ``mltrack`` (``MLTRACK_WRITER=thread``: the thread writer) and
``mltrack-process`` (``MLTRACK_WRITER=process``: the writer runs in its own process); ``mlflow-sync``
and ``mlflow-async`` (``mlflow.log_metric(..., synchronous=...)``); ``wandb`` (offline) when the
package is installed, else skipped with the reason. MLflow sync writes one point per call and takes
milliseconds a call, so it logs ``--mlflow-sync-steps`` (default 500); MLflow async's queue drains at
a few hundred points a second on this path, so it logs ``--mlflow-async-steps`` (default 2,000); both
are marked ``*`` (per-step figures, and "durable" is for their smaller number of points).

Stores: a fresh sqlite file per contender and round; ``--server`` uses one local ``mlflow server``
(sqlite backend) instead, started with ``mltrack.testing.servers.MlflowServer``.

Goals (printed with PASS/MISS; always exits 0): mltrack train CPU ≤ 3 µs per point over bare, total
CPU per point no worse than the thread writer, and (with ``--server``) the last point durable ≤ 2 s.

Run:  .venv/bin/python benchmarks/step_overhead.py [--steps 20000] [--rounds 5]
        [--workloads numpy,torch] [--contenders bare,mltrack,mltrack-process,mlflow-sync,mlflow-async,wandb]
        [--server]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "
ALL_CONTENDERS = ["bare", "mltrack", "mltrack-process", "mlflow-sync", "mlflow-async", "wandb"]


# -- the child ------------------------------------------------------------------------------------


def _make_step(workload: str) -> Any:
    if workload == "numpy":
        import numpy as np

        a = np.random.default_rng(0).random((24, 24))
        b = np.random.default_rng(1).random((24, 24))

        def step() -> float:
            # ~10 µs of numpy work on a quiet machine
            c = a @ b
            c = np.tanh(c) + a
            return float(c.sum())

        return step
    if workload == "torch":
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(16, 32)
        y = torch.randn(16, 1)

        def torch_step() -> float:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            return float(loss.detach())

        return torch_step
    raise SystemExit(f"unknown workload {workload!r}")


def _helpers_cpu(helper_pids: list[int]) -> float:
    """CPU seconds so far of this process's descendants and the named helper processes."""
    import psutil

    me = psutil.Process()
    seen: dict[int, Any] = {p.pid: p for p in me.children(recursive=True)}
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


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import resource

    kind: str = spec["kind"]
    steps: int = spec["steps"]
    uri: str = spec["uri"]
    step = _make_step(spec["workload"])
    for _ in range(200):  # warm the workload's caches
        step()
    helpers: list[int] = []
    log: Any = None
    end: Any = None
    if kind in ("mltrack", "mltrack-process"):
        import mltrack

        extra = {"writer": "process" if kind == "mltrack-process" else "thread"}
        mltrack.configure(tracking_uri=uri, data_dir=Path(spec["data_dir"]), **extra)
        mltrack.start_run(run_name=f"bench-{kind}")
        log = mltrack.log_metric
        mltrack.log_metric("warmup", 0.0)
        mltrack.flush()
        from mltrack.tracking import runs

        pid = getattr(runs.get_writer(), "writer_pid", None)
        if pid:
            helpers.append(pid)

        def end_mltrack() -> None:
            mltrack.end_run()

        end = end_mltrack
    elif kind in ("mlflow-sync", "mlflow-async"):
        import mlflow

        synchronous = kind == "mlflow-sync"
        mlflow.set_tracking_uri(uri)
        mlflow.start_run(run_name=f"bench-{kind}")
        mlflow.log_metric("warmup", 0.0, synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()

        def log_mlflow(key: str, value: float, step: int) -> None:
            mlflow.log_metric(key, value, step=step, synchronous=synchronous)

        log = log_mlflow

        def end_mlflow() -> None:
            if not synchronous:
                mlflow.flush_async_logging()
            mlflow.end_run()

        end = end_mlflow
    elif kind == "wandb":
        os.environ["WANDB_MODE"] = "offline"
        os.environ["WANDB_DIR"] = spec["data_dir"]
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        wb = wandb.init(project="step-overhead", dir=spec["data_dir"])
        wb.log({"warmup": 0.0})

        def log_wandb(key: str, value: float, step: int) -> None:
            wb.log({key: value}, step=step)

        log = log_wandb

        def end_wandb() -> None:
            wb.finish()

        end = end_wandb
    elif kind != "bare":
        raise SystemExit(f"unknown contender {kind!r}")

    cpu0 = time.process_time()
    helper0 = _helpers_cpu(helpers)
    t0 = time.perf_counter()
    if log is None:
        for _ in range(steps):
            step()
    else:
        for i in range(steps):
            log("loss", step(), step=i)
    t1 = time.perf_counter()
    if end is not None:
        end()
    t2 = time.perf_counter()
    cpu1 = time.process_time()
    helper1 = _helpers_cpu(helpers)
    return {
        "kind": kind,
        "steps": steps,
        "train_cpu_us": 1e6 * (cpu1 - cpu0) / steps,
        "helper_cpu_us": 1e6 * (helper1 - helper0) / steps,
        "wall_us": 1e6 * (t1 - t0) / steps,
        "durable_s": t2 - t1,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- the parent -----------------------------------------------------------------------------------


def _run_child(spec: dict[str, Any], env_extra: dict[str, str]) -> dict[str, Any] | str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRACK_", "MLFLOW_", "WANDB_"))}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    return f"failed (rc {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-600:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--mlflow-sync-steps", type=int, default=500)
    parser.add_argument("--mlflow-async-steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="numpy,torch")
    parser.add_argument("--contenders", default=",".join(ALL_CONTENDERS))
    parser.add_argument("--server", action="store_true", help="log to a local mlflow server instead of sqlite")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = _worker(json.loads(args.worker))
        sys.stdout.write("\n" + RESULT_PREFIX + json.dumps(result) + "\n")
        return

    contenders = [c for c in args.contenders.split(",") if c]
    skipped: dict[str, str] = {}
    if "wandb" in contenders:
        try:
            import importlib.util

            if importlib.util.find_spec("wandb") is None:
                raise ImportError("the wandb package is not installed")
        except ImportError as exc:
            skipped["wandb"] = str(exc)
            contenders.remove("wandb")
    workloads = [w for w in args.workloads.split(",") if w]
    tmp = Path(tempfile.mkdtemp(prefix="step-overhead-"))
    server = None
    if args.server:
        from mltrack.testing.servers import MlflowServer

        server = MlflowServer(f"sqlite:///{tmp / 'server.db'}", tmp / "artifacts").start()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failures: list[str] = []
    try:
        for round_no in range(args.rounds):
            for workload in workloads:
                for kind in contenders:
                    folder = tmp / f"{workload}-{kind}-{round_no}"
                    folder.mkdir()
                    uri = server.url if server is not None else f"sqlite:///{folder / 'store.db'}"
                    steps = {"mlflow-sync": args.mlflow_sync_steps, "mlflow-async": args.mlflow_async_steps}.get(
                        kind, args.steps
                    )
                    spec = {"kind": kind, "workload": workload, "steps": steps, "uri": uri, "data_dir": str(folder)}
                    env = {"MLTRACK_WRITER": "process" if kind == "mltrack-process" else "thread"}
                    outcome = _run_child(spec, env)
                    if isinstance(outcome, str):
                        failures.append(f"{workload}/{kind} round {round_no}: {outcome}")
                        continue
                    results.setdefault((workload, kind), []).append(outcome)
                    print(
                        f"round {round_no} {workload:5s} {kind:15s} train {outcome['train_cpu_us']:7.1f} "
                        f"helper {outcome['helper_cpu_us']:7.1f} µs/step, durable {outcome['durable_s']:.2f}s",
                        file=sys.stderr,
                    )
    finally:
        if server is not None:
            server.stop()

    store = "local mlflow server (sqlite)" if server is not None else "sqlite file"
    print(
        f"\nstep_overhead: {args.steps} steps (mlflow sync: {args.mlflow_sync_steps}*, "
        f"async: {args.mlflow_async_steps}*), one log_metric a step"
    )
    print(f"store: {store}; medians of {args.rounds} rounds; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    header = (
        f"{'workload':8s} {'contender':16s} {'train CPU':>10s} {'helper CPU':>10s} {'over bare':>10s} "
        f"{'(train)':>8s} {'wall':>8s} {'durable':>8s} {'peak RSS':>9s}"
    )
    print(header)
    print(
        f"{'':8s} {'':16s} {'µs/step':>10s} {'µs/step':>10s} {'µs/pt':>10s} {'µs/pt':>8s} {'µs/step':>8s} "
        f"{'s':>8s} {'MB':>9s}"
    )
    summary: dict[str, Any] = {}
    for workload in workloads:
        bare = results.get((workload, "bare"))
        bare_train = statistics.median(r["train_cpu_us"] for r in bare) if bare else 0.0
        bare_helper = statistics.median(r["helper_cpu_us"] for r in bare) if bare else 0.0
        for kind in contenders:
            rows = results.get((workload, kind))
            if not rows:
                continue
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k not in ("kind", "steps")}
            over = med["train_cpu_us"] + med["helper_cpu_us"] - bare_train - bare_helper
            over_train = med["train_cpu_us"] - bare_train
            mark = "*" if kind in ("mlflow-sync", "mlflow-async") else ""
            print(
                f"{workload:8s} {kind + mark:16s} {med['train_cpu_us']:10.1f} {med['helper_cpu_us']:10.1f} "
                f"{over if kind != 'bare' else 0:10.1f} {over_train if kind != 'bare' else 0:8.1f} "
                f"{med['wall_us']:8.1f} {med['durable_s']:8.2f} {med['peak_rss_mb']:9.0f}"
            )
            summary[f"{workload}/{kind}"] = {**med, "over_bare_us": over, "over_bare_train_us": over_train}
    for kind, reason in skipped.items():
        print(f"{kind}: skipped ({reason})")
    for failure in failures:
        print(f"FAILED {failure}")
    for workload in workloads:
        proc = summary.get(f"{workload}/mltrack-process")
        thread = summary.get(f"{workload}/mltrack")
        if proc is not None:
            ok = proc["over_bare_train_us"] <= 3.0
            print(
                f"{'PASS' if ok else 'MISS'} {workload}: mltrack-process train CPU over bare "
                f"{proc['over_bare_train_us']:.1f} µs/pt (goal ≤ 3)"
            )
            if thread is not None:
                ok = proc["over_bare_us"] <= thread["over_bare_us"] * 1.1
                print(
                    f"{'PASS' if ok else 'MISS'} {workload}: total CPU over bare {proc['over_bare_us']:.1f} µs/pt "
                    f"vs thread writer {thread['over_bare_us']:.1f}"
                )
            if server is not None:
                ok = proc["durable_s"] <= 2.0
                print(
                    f"{'PASS' if ok else 'MISS'} {workload}: durable {proc['durable_s']:.2f}s after the last step "
                    f"on the mlflow server (goal ≤ 2)"
                )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
