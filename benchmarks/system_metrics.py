"""System-metrics overhead: the mltrack-system sampler beside MLflow's own ``SystemMetricsMonitor``.

Both monitors run at the same time, in this one process, beside a training loop (256x256 float64
matmuls in the main thread, BLAS on one thread), each writing to its own fresh sqlite store; they
see the same machine, the same load and the same loop.

What is measured:

* **CPU, % of one core**: the CPU time of each monitor's threads over a window of whole intervals,
  divided by the window's wall time. Thread CPU is read with
  ``clock_gettime(pthread_getcpuclockid(thread))`` (nanosecond resolution), before and after the
  window, so start-up (imports, probe set-up) is left out. mltrack counts two threads: its sampler,
  which reads the probes and hands each sample to ``mltrack.log_metrics`` (validation and the
  crash-safe spool), and the background writer, which batches the samples into the store (the loop
  logs nothing else, so everything the writer does here is the samples' doing, plus its idle
  wake-ups, which any mltrack run pays). "net" leaves those wake-ups out: the writer is also measured
  for ``--idle-window`` s in a run that logs nothing, and that rate is subtracted. MLflow counts its
  monitor thread, which reads, checks its run with ``get_run`` and writes with ``log_batch`` itself.
  Also printed: mltrack's CPU as a share of the training loop's CPU. At 1 s and 10 s intervals
  (``--window-1s`` s, ``--samples-10s`` samples).
* **latency of one sample**: median and p95 over ``--latency-samples`` samples taken back to back in
  the main thread: reading the probes alone (mltrack's probes; MLflow's ``collect_metrics``), and a
  whole sample as each monitor's loop does it (mltrack: read + ``log_metrics``; MLflow: collect +
  ``get_run`` + aggregate + publish).

GPU: the machine's NVIDIA GPUs are read by both monitors where NVML finds them; the header says
which (on a machine without one, neither reads a GPU).

Target (printed with PASS/MISS; the script always exits 0, it is a report): mltrack's sampler and
writer together ≤ 0.5 % of one core at a 10 s interval.

Run:  .venv/bin/python benchmarks/system_metrics.py [--window-1s 30] [--samples-10s 12] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_PERCENT_OF_A_CORE_AT_10S = 0.5


def thread_cpu_s(thread: threading.Thread) -> float:
    """CPU seconds ``thread`` has used so far (it must be alive)."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


@dataclass
class Window:
    interval_s: float
    wall_s: float
    mltrack_sampler_s: float
    mltrack_writer_s: float
    mlflow_s: float
    training_s: float
    training_steps: int
    mltrack_samples: int

    @property
    def mltrack_s(self) -> float:
        return self.mltrack_sampler_s + self.mltrack_writer_s

    def percent_of_core(self, cpu_s: float) -> float:
        return 100 * cpu_s / self.wall_s

    def net_percent(self, writer_idle_percent: float) -> float:
        """The sampler plus what the writer did beyond its idle wake-ups: the plugin's own cost."""
        writer = max(0.0, self.percent_of_core(self.mltrack_writer_s) - writer_idle_percent)
        return self.percent_of_core(self.mltrack_sampler_s) + writer


def mlflow_monitor(run_id: str, **kwargs: Any) -> Any:
    """MLflow's own monitor (``mlflow.system_metrics``) for ``run_id``, not started."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor: Any = SystemMetricsMonitor
    return monitor(run_id, **kwargs)


def training_loop(seconds: float) -> tuple[int, float]:
    """Matmuls for ``seconds`` of wall time; returns (steps, CPU seconds of this thread)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((256, 256)), rng.standard_normal((256, 256))
    cpu0, end, steps = time.thread_time(), time.monotonic() + seconds, 0
    while time.monotonic() < end:
        a = np.tanh(a @ b)
        steps += 1
    return steps, time.thread_time() - cpu0


def measure_window(interval_s: float, window_s: float, mlflow_uri: str) -> Window:
    import mlflow

    import mltrack
    from mltrack_system.sampler import REGISTRY

    mltrack.configure(plugins={"system": {"enabled": True, "interval_s": interval_s}})
    their_run = mlflow.MlflowClient(mlflow_uri).create_run("0", run_name=f"mlflow-monitor-{interval_s:g}s")
    theirs = mlflow_monitor(their_run.info.run_id, sampling_interval=interval_s, tracking_uri=mlflow_uri)
    with mltrack.start_run(run_name=f"mltrack-system-{interval_s:g}s") as run:
        theirs.start()
        ours = REGISTRY.get(run.run_id)
        writer = next(t for t in threading.enumerate() if t.name == "mltrack-writer")
        their_thread = theirs._process
        assert ours is not None and their_thread is not None
        time.sleep(min(0.5, interval_s / 2))  # both set up (imports, probes): left out of the window
        threads = {"sampler": ours.thread, "writer": writer, "mlflow": their_thread}
        before = {name: thread_cpu_s(t) for name, t in threads.items()}
        samples_before = ours.steps
        t0 = time.monotonic()
        steps, training_cpu = training_loop(window_s)
        wall = time.monotonic() - t0
        after = {name: thread_cpu_s(t) for name, t in threads.items()}
        samples = ours.steps - samples_before
    theirs.finish()
    mlflow.MlflowClient(mlflow_uri).set_terminated(their_run.info.run_id)
    return Window(
        interval_s=interval_s,
        wall_s=wall,
        mltrack_sampler_s=after["sampler"] - before["sampler"],
        mltrack_writer_s=after["writer"] - before["writer"],
        mlflow_s=after["mlflow"] - before["mlflow"],
        training_s=training_cpu,
        training_steps=steps,
        mltrack_samples=samples,
    )


def measure_writer_idle(window_s: float) -> float:
    """% of one core the background writer uses in a run that logs nothing (its wake-ups alone)."""
    import mltrack

    mltrack.configure(plugins={"system": {"enabled": False}})
    with mltrack.start_run(run_name="writer-idle"):
        writer = next(t for t in threading.enumerate() if t.name == "mltrack-writer")
        time.sleep(0.5)
        before, t0 = thread_cpu_s(writer), time.monotonic()
        training_loop(window_s)
        return 100 * (thread_cpu_s(writer) - before) / (time.monotonic() - t0)


def timings_ms(call: Callable[[], Any], n: int) -> tuple[float, float]:
    """(median, p95) of ``n`` calls in milliseconds, after 5 unmeasured ones."""
    for _ in range(5):
        call()
    durations = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        durations.append((time.perf_counter() - t) * 1000)
    durations.sort()
    return statistics.median(durations), durations[min(n - 1, int(n * 0.95))]


def measure_latency(n: int, mlflow_uri: str) -> dict[str, tuple[float, float]]:
    import mlflow

    import mltrack
    from mltrack_system.sampler import Sampler, SamplerConfig, SayOnce, open_probes
    from mltrack_system.settings import GROUPS

    mltrack.configure(plugins={"system": {"enabled": False}})  # this run's samples are taken by hand
    client = mlflow.MlflowClient(mlflow_uri)
    their_run = client.create_run("0", run_name="mlflow-latency")
    theirs = mlflow_monitor(their_run.info.run_id, tracking_uri=mlflow_uri)

    def their_sample() -> None:  # one pass of SystemMetricsMonitor.monitor's loop, without its wait
        theirs.collect_metrics()
        client.get_run(their_run.info.run_id)
        theirs.publish_metrics(theirs.aggregate_metrics())

    with mltrack.start_run(run_name="mltrack-latency") as run:
        config = SamplerConfig(interval_s=10.0, groups=GROUPS, disk_path="/", prefix="system/")
        probes = open_probes(config, SayOnce(run.run_id))
        sampler = Sampler(run.run_id, config)  # not started: its sample() is called here

        def our_read() -> None:
            for probe in probes:
                probe.read()

        result = {
            "mltrack read": timings_ms(our_read, n),
            "mltrack sample": timings_ms(lambda: sampler.sample(probes), n),
            "mlflow read": timings_ms(theirs.collect_metrics, n),
            "mlflow sample": timings_ms(their_sample, n),
        }
        for probe in probes:
            probe.close()
    theirs.mlflow_logger.flush()
    client.set_terminated(their_run.info.run_id)
    return result


def gpu_line() -> str:
    from mltrack_system import nvml

    try:
        session = nvml.open_nvml()
    except nvml.NvmlUnavailableError as exc:
        return f"none read ({exc})"
    count = session.device_count()
    session.close()
    return f"{count} NVIDIA device(s) read by both monitors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window-1s", type=float, default=30.0, help="window of the 1 s interval, in seconds")
    parser.add_argument("--samples-10s", type=int, default=12, help="window of the 10 s interval, in samples")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--idle-window", type=float, default=10.0, help="seconds to measure the idle writer")
    parser.add_argument("--quick", action="store_true", help="short windows: 10 s, 3 samples, 5 s idle")
    args = parser.parse_args()
    # Before numpy is imported (by MLflow): one BLAS thread, so the training loop is one core's work.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    for name in ("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"):
        os.environ.pop(name, None)  # MLflow's monitor would take these over its constructor arguments
    if args.quick:
        args.window_1s, args.samples_10s, args.latency_samples, args.idle_window = 10.0, 3, 50, 5.0
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # its monitor says INFO lines at start and stop

    import mltrack

    with tempfile.TemporaryDirectory(prefix="mltrack-bench-system-") as folder:
        base = Path(folder)
        os.chdir(base)  # the stores' artifact roots (./mlruns) are made here, not in the repository
        mltrack.configure(tracking_uri=f"sqlite:///{base / 'mltrack.db'}", data_dir=base / "state")
        mlflow_uri = f"sqlite:///{base / 'mlflow.db'}"
        print(
            f"system metrics overhead: {platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPU(s); GPU: {gpu_line()}"
        )
        latency = measure_latency(args.latency_samples, mlflow_uri)
        writer_idle = measure_writer_idle(args.idle_window)
        windows = [
            measure_window(1.0, args.window_1s, mlflow_uri),
            measure_window(10.0, args.samples_10s * 10.0, mlflow_uri),
        ]

    print()
    print("CPU of the monitors beside a training loop, % of one core (CPU s / wall s)")
    print(f"  mltrack's writer alone, in a run that logs nothing (its idle wake-ups): {writer_idle:.3f} %")
    print(
        f"{'interval':>9}{'window s':>10}{'samples':>9}{'sampler':>10}{'writer':>9}{'mltrack':>10}{'net':>8}"
        f"{'mlflow':>9}{'mlflow/mltrack':>16}{'mlflow/net':>12}{'mltrack/loop':>14}"
    )
    for w in windows:
        gross, net, theirs = w.percent_of_core(w.mltrack_s), w.net_percent(writer_idle), w.percent_of_core(w.mlflow_s)
        share = 100 * w.mltrack_s / w.training_s if w.training_s > 0 else float("nan")
        print(
            f"{w.interval_s:>8g}s{w.wall_s:>10.1f}{w.mltrack_samples:>9}"
            f"{w.percent_of_core(w.mltrack_sampler_s):>10.3f}{w.percent_of_core(w.mltrack_writer_s):>9.3f}"
            f"{gross:>10.3f}{net:>8.3f}{theirs:>9.3f}{theirs / gross:>15.1f}x"
            f"{(theirs / net if net > 0 else float('inf')):>11.1f}x{share:>13.3f}%"
        )
    print(
        "  mltrack = sampler + writer; net = sampler + the writer's CPU beyond its idle wake-ups (what the plugin "
        "adds to a run);\n  mltrack/loop = mltrack's CPU as a share of the training loop's CPU"
    )
    print()
    print("latency of one sample, ms (median / p95)")
    print(f"{'':<10}{'read the probes':>20}{'whole sample':>20}")
    for who in ("mltrack", "mlflow"):
        read, whole = latency[f"{who} read"], latency[f"{who} sample"]
        print(f"{who:<10}{f'{read[0]:.3f} / {read[1]:.3f}':>20}{f'{whole[0]:.3f} / {whole[1]:.3f}':>20}")
    whole_ratio = latency["mlflow sample"][0] / latency["mltrack sample"][0]
    read_ratio = latency["mlflow read"][0] / latency["mltrack read"][0]
    print(f"mlflow/mltrack (median): read {read_ratio:.1f}x, whole sample {whole_ratio:.1f}x")
    print()
    at_10s = windows[1].percent_of_core(windows[1].mltrack_s)
    verdict = "PASS" if at_10s <= TARGET_PERCENT_OF_A_CORE_AT_10S else "MISS"
    print(
        f"mltrack (sampler + writer, idle wake-ups included) at 10 s: {at_10s:.3f} % of one core "
        f"(target ≤ {TARGET_PERCENT_OF_A_CORE_AT_10S} %): {verdict}"
    )


if __name__ == "__main__":
    main()
