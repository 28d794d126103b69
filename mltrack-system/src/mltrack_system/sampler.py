"""The sampler: one thread per run per process, reading the probes every ``interval_s`` seconds.

Samples are logged with ``mltrack.log_metrics(..., run_id=..., step=<sample index>)``, the same path
as any metric, so they are spooled (crash-safe) and batched by the background writer. Nothing the
sampler does may break a run: every exception is caught and said once, at debug level.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import mltrack
from mltrack_system.names import PEAKS_TAG, PREFIX

if TYPE_CHECKING:
    from mltrack_system.settings import SystemSettings

logger = logging.getLogger("mltrack.system")

STOP_TIMEOUT_S = 5.0  # how long ending a run waits for a sample in progress (a hung NFS mount, a wedged GPU)
_MAX_TAG_CHARS = 7900  # MLflow refuses tag values over 8000 characters


class Probe(Protocol):
    """One group of readings (``host.CpuProbe``, ``gpu.GpuProbe``, ...)."""

    group: str

    def read(self) -> dict[str, float]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SamplerConfig:
    """What one sampler reads and how it names it, fixed when its run starts."""

    interval_s: float
    groups: tuple[str, ...]
    disk_path: str
    prefix: str  # "system/" or "system/<node id>/"

    @classmethod
    def from_settings(cls, settings: SystemSettings, environ: Mapping[str, str] = os.environ) -> SamplerConfig:
        node_id = resolve_node_id(settings.node_id, environ)
        return cls(
            interval_s=settings.interval_s,
            groups=tuple(dict.fromkeys(settings.groups)),
            disk_path=settings.disk_path,
            prefix=f"{PREFIX}{node_id}/" if node_id else PREFIX,
        )


def resolve_node_id(setting: str, environ: Mapping[str, str] = os.environ) -> str:
    """The node id for metric names: the setting, or for "auto" ``rank_<RANK>`` in a job of several ranks."""
    if setting != "auto":
        return setting
    if environ.get("WORLD_SIZE", "").strip() == "1":
        return ""
    rank = (environ.get("RANK") or environ.get("LOCAL_RANK") or "").strip()
    return f"rank_{rank}" if re.fullmatch(r"\d+", rank) else ""


def open_probes(config: SamplerConfig, say: SayOnce) -> list[Probe]:
    """The probes of the configured groups that this machine supports."""
    from mltrack_system import gpu, host

    probes: list[Probe] = []
    for group in config.groups:
        try:
            probe: Probe | None
            if group == "cpu":
                probe = host.CpuProbe()
            elif group == "memory":
                probe = host.MemoryProbe()
            elif group == "disk":
                probe = host.DiskProbe(config.disk_path)
            elif group == "network":
                probe = host.NetworkProbe()
            elif group == "process":
                probe = host.ProcessProbe()
            else:
                probe = gpu.open_gpu_probe()
        except Exception as exc:
            say(f"open {group}", f"the {group} group is not sampled: {exc!r}")
            continue
        if probe is not None:
            probes.append(probe)
    return probes


class SayOnce:
    """Debug-logs each kind of problem once per sampler, so a failing probe cannot flood the log."""

    def __init__(self, run_id: str) -> None:
        self._run_id = run_id
        self._said: set[str] = set()

    def __call__(self, kind: str, message: str) -> None:
        if kind in self._said:
            return
        self._said.add(kind)
        logger.debug("mltrack system metrics of run %s: %s (said once)", self._run_id, message)


class Sampler:
    """Samples for one run in a daemon thread until ``stop``, which takes one last sample."""

    def __init__(self, run_id: str, config: SamplerConfig) -> None:
        self.run_id = run_id
        self.config = config
        self.steps = 0  # samples taken: the next sample's step
        self.peaks: dict[str, float] = {}
        self._say = SayOnce(run_id)
        self._stop = threading.Event()
        # Held while logging: once ``stop`` has set ``_closed`` under it, nothing more reaches the run,
        # so a sample still running after the stop timeout cannot log to a run that has ended.
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"mltrack-system-{run_id[:8]}", daemon=True)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Take the last sample, write the peaks, and end the thread (waiting at most ``timeout`` s)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            self._closed = True
        if self._thread.is_alive():
            logger.debug("mltrack system metrics of run %s: the sampler did not stop within %ss", self.run_id, timeout)

    def _loop(self) -> None:
        try:
            probes = open_probes(self.config, self._say)
        except Exception as exc:  # the run goes on without system metrics
            self._say("open", f"no system metrics: {exc!r}")
            return
        try:
            started, interval, point = time.monotonic(), self.config.interval_s, 0
            while True:
                # Wait for the next point of a grid fixed at the start, not a full interval after each
                # sample: the period does not drift, and a process that was suspended or fell behind
                # takes one sample at the next point instead of a burst.
                point = max(point + 1, int((time.monotonic() - started) / interval) + 1)
                stopping = self._stop.wait(max(0.0, started + point * interval - time.monotonic()))
                self.sample(probes)
                if stopping:
                    break
            self._write_peaks()
        except Exception as exc:
            self._say("loop", f"sampling stopped: {exc!r}")
        finally:
            for probe in probes:
                try:
                    probe.close()
                except Exception as exc:
                    self._say(f"close {probe.group}", f"closing the {probe.group} probe failed: {exc!r}")

    def sample(self, probes: Sequence[Probe]) -> dict[str, float]:
        """Read every probe once and log the values at the next step; returns what was logged."""
        values: dict[str, float] = {}
        for probe in probes:
            try:
                read = probe.read()
            except Exception as exc:
                self._say(f"read {probe.group}", f"reading the {probe.group} group failed: {exc!r}")
                continue
            prefix = self.config.prefix
            values.update((prefix + name, float(value)) for name, value in read.items() if math.isfinite(value))
        step = self.steps
        self.steps += 1
        if not values:
            return values
        with self._lock:
            if self._closed:
                return {}
            try:
                mltrack.log_metrics(values, step=step, run_id=self.run_id)
            except Exception as exc:
                self._say("log", f"logging a sample failed: {exc!r}")
                return {}
        for name, value in values.items():
            if value > self.peaks.get(name, -math.inf):
                self.peaks[name] = value
        return values

    def _write_peaks(self) -> None:
        if not self.peaks:
            return
        node = self.config.prefix[len(PREFIX) :].strip("/")
        tag = f"{PEAKS_TAG}.{node}" if node else PEAKS_TAG
        peaks = {name: round(value, 3) for name, value in sorted(self.peaks.items())}
        text = json.dumps(peaks, separators=(",", ":"))
        while len(text) > _MAX_TAG_CHARS and peaks:  # dozens of GPUs: keep what fits
            peaks.popitem()
            text = json.dumps(peaks, separators=(",", ":"))
        with self._lock:
            if self._closed:
                return
            try:
                mltrack.set_tag(tag, text, run_id=self.run_id)
            except Exception as exc:
                self._say("peaks", f"writing the peaks tag failed: {exc!r}")


class SamplerRegistry:
    """This process's samplers, one per run. The single owner of the plugin's process state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samplers: dict[str, Sampler] = {}

    def start(self, run_id: str, config: SamplerConfig) -> Sampler:
        with self._lock:
            sampler = self._samplers.get(run_id)
            if sampler is not None and sampler.thread.is_alive():
                return sampler  # a run resumed while still sampled: one sampler per run per process
            sampler = self._samplers[run_id] = Sampler(run_id, config)
        try:
            sampler.start()
        except RuntimeError as exc:  # no thread to be had (a process at its thread limit): run without
            logger.debug("mltrack system metrics of run %s: no sampler thread: %s", run_id, exc)
            with self._lock:
                self._samplers.pop(run_id, None)
        return sampler

    def stop(self, run_id: str, timeout: float = STOP_TIMEOUT_S) -> Sampler | None:
        with self._lock:
            sampler = self._samplers.pop(run_id, None)
        if sampler is not None:
            sampler.stop(timeout)
        return sampler

    def get(self, run_id: str) -> Sampler | None:
        with self._lock:
            return self._samplers.get(run_id)

    def run_ids(self) -> list[str]:
        with self._lock:
            return list(self._samplers)

    def reset(self) -> None:
        """Stop every sampler (tests, and a process that wants its threads back)."""
        for run_id in self.run_ids():
            self.stop(run_id)

    def after_fork_in_child(self) -> None:
        # The parent's sampler threads do not exist in the child, and a lock one of them held at the
        # fork would stay held forever: start from nothing. The child samples only runs it starts.
        self._lock = threading.Lock()
        self._samplers = {}


REGISTRY = SamplerRegistry()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=REGISTRY.after_fork_in_child)


def start_sampling(run_id: str) -> Sampler | None:
    """Start sampling for ``run_id`` unless the settings in force switch it off."""
    settings: SystemSettings = mltrack.plugin_settings("system")
    if not settings.enabled or not settings.groups:
        return None
    return REGISTRY.start(run_id, SamplerConfig.from_settings(settings))


def stop_sampling(run_id: str) -> Sampler | None:
    """Stop the run's sampler after its last sample; None if the run was not sampled in this process."""
    return REGISTRY.stop(run_id)
