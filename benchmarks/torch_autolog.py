"""Per-step cost of PyTorch autologging, beside logging the learning rate with MLflow by hand.

The issue's target: autologging a plain PyTorch loop adds no per-step cost beyond the
non-blocking log call. So this measures, on the same small training loop (an MLP on the CPU,
batch 32, so that one step is tens of microseconds and any overhead shows):

* **bare**: the loop alone, no run.
* **log_metric**: the loop inside an MLTrack run calling ``mltrack.log_metric("lr", ...)`` itself
  each step: the non-blocking log call the autologger is allowed to cost.
* **autolog**: the loop inside an MLTrack run with ``mltrack.autolog("torch")`` and nothing else
  (params, lr per step, the model logged at the end; the end-of-run model logging is not in the loop).
* **mlflow async** / **mlflow sync**: the loop inside an MLflow run calling
  ``mlflow.log_metric("lr", ..., synchronous=False/True)`` each step: what a user of plain MLflow
  writes, since MLflow's ``mlflow.pytorch.autolog`` only covers PyTorch Lightning.

Each contender runs in its own fresh ``python`` subprocess with its own sqlite store. After a
warm-up, it alternates ``--repeat`` pairs of loops of ``--steps`` steps: one with logging off
(autologging disabled, no log call) and one with it on, so drifts in the machine's speed hit
both alike. Its overhead per step is the median over the pairs of (on - off) / steps.
Every contender's ``lr`` history is read back from the store and must hold every step.

Target (PASS/MISS; the script exits 0, it is a report): autolog's overhead per step is within
2 µs of an explicit ``mltrack.log_metric`` call's, and at least 10x below MLflow sync's.

Run:  .venv/bin/python benchmarks/torch_autolog.py [--steps 2000] [--repeat 5]
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
CONTENDERS = ["bare", "log_metric", "autolog", "mlflow-async", "mlflow-sync"]
TARGET_VS_LOG_CALL_US = 2.0
TARGET_VS_SYNC = 10.0


def _worker(kind: str, steps: int, repeat: int, tmp: str) -> dict[str, Any]:
    import contextlib

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.9)
    x, y = torch.randn(32, 16), torch.randn(32, 1)
    uri = f"sqlite:///{tmp}/{kind}.db"
    log = None
    run_id = None
    stack = contextlib.ExitStack()
    if kind in {"log_metric", "autolog"}:
        os.environ["MLTRACK_TRACKING_URI"] = uri
        os.environ["MLTRACK_DATA_DIR"] = f"{tmp}/{kind}-data"
        import mltrack

        if kind == "autolog":
            mltrack.autolog("torch")
        run = stack.enter_context(mltrack.start_run())
        run_id = run.run_id
        if kind == "log_metric":
            log = mltrack.log_metric
    elif kind.startswith("mlflow"):
        import mlflow

        mlflow.set_tracking_uri(uri)
        run_id = stack.enter_context(mlflow.start_run()).info.run_id
        synchronous = kind == "mlflow-sync"

        def log(key: str, value: float, step: int) -> None:
            mlflow.log_metric(key, value, step=step, synchronous=synchronous)

    done = 0

    def loop(n: int, logging_on: bool) -> float:
        nonlocal done
        call = log if logging_on else None
        start = time.perf_counter()
        for _ in range(n):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            if logging_on:
                done += 1
            if call is not None:
                call("lr", optimizer.param_groups[0]["lr"], done)
            scheduler.step()
        return (time.perf_counter() - start) / n

    def bare(n: int) -> float:
        # the same loop with logging off, in this process. For autolog that means pausing its
        # optimizer hook, which no public API does without also ending the run's series: the
        # benchmark takes the hook out of torch's registry and puts it back.
        if kind != "autolog":
            return loop(n, False)
        from torch.optim.optimizer import register_optimizer_step_post_hook

        import mltrack_torch.autolog as torch_autolog

        assert torch_autolog._handle is not None
        torch_autolog._handle.remove()
        try:
            return loop(n, False)
        finally:
            torch_autolog._handle = register_optimizer_step_post_hook(torch_autolog._after_step)

    loop(50, kind != "bare")  # warm-up: first steps allocate optimizer state and build the series
    bare(50)
    # alternate bare and logging loops so that drifts of the machine's speed hit both alike
    pairs = [(bare(steps), loop(steps, kind != "bare")) for _ in range(repeat)]
    stored = None
    if kind in {"log_metric", "autolog"}:
        import mltrack

        mltrack.flush()
        stack.close()
        from mlflow import MlflowClient

        stored = len(MlflowClient(uri).get_metric_history(run_id, "lr"))
    elif kind.startswith("mlflow"):
        import mlflow

        mlflow.flush_async_logging()
        stack.close()
        stored = len(mlflow.MlflowClient(uri).get_metric_history(run_id, "lr"))
    return {
        "kind": kind,
        "bare_us": statistics.median(b for b, _ in pairs) * 1e6,
        "step_us": statistics.median(s for _, s in pairs) * 1e6,
        "overhead_us": statistics.median(s - b for b, s in pairs) * 1e6,
        "steps": done,
        "stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--mlflow-sync-steps", type=int, default=200, help="steps per loop for MLflow sync (slow)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(RESULT_PREFIX + json.dumps(_worker(**spec)), flush=True)
        return

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mltrack-bench-torch-") as tmp:
        for kind in CONTENDERS:
            steps = args.mlflow_sync_steps if kind == "mlflow-sync" else args.steps
            spec = {"kind": kind, "steps": steps, "repeat": args.repeat, "tmp": tmp}
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
            if proc.returncode != 0 or not lines:
                sys.exit(f"{kind} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            results[kind] = json.loads(lines[-1][len(RESULT_PREFIX) :])

    print(f"torch autolog overhead: {args.steps} steps x {args.repeat} loop pairs (CPU, 1 thread)")
    print(f"{'contender':<14}{'bare µs':>10}{'step µs':>10}{'overhead µs':>14}{'lr points stored':>20}")
    for kind in CONTENDERS:
        r = results[kind]
        stored = "-" if r["stored"] is None else f"{r['stored']}/{r['steps']}"
        print(f"{kind:<14}{r['bare_us']:>10.1f}{r['step_us']:>10.1f}{r['overhead_us']:>14.2f}{stored:>20}")
    over = {k: results[k]["overhead_us"] for k in CONTENDERS}
    vs_call = over["autolog"] - over["log_metric"]
    vs_sync = over["mlflow-sync"] / max(over["autolog"], 0.01)
    vs_async = over["mlflow-async"] / max(over["autolog"], 0.01)
    complete = all(r["stored"] in (None, r["steps"]) for r in results.values())
    print(f"autolog vs an explicit mltrack.log_metric: {vs_call:+.2f} µs/step (target ≤ {TARGET_VS_LOG_CALL_US})")
    print(f"MLflow sync overhead / autolog overhead:  {vs_sync:.0f}x (target ≥ {TARGET_VS_SYNC:.0f}x)")
    print(f"MLflow async overhead / autolog overhead: {vs_async:.1f}x")
    passed = vs_call <= TARGET_VS_LOG_CALL_US and vs_sync >= TARGET_VS_SYNC and complete
    print(f"every lr point stored: {complete}; {'PASS' if passed else 'MISS'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
