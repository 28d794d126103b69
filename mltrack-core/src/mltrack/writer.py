"""The background writer: logging calls enqueue, one thread batches into the store.

A logging call only validates and appends a tuple to a deque (~1 µs). The writer
thread wakes every ``flush_interval_ms`` (or when asked to flush), groups what it
drained by run, splits it within MLflow's per-request limits and writes it to the
run's store, then hands the same batches to the extra sinks. A store write that
fails is retried with exponential backoff; data that still cannot be written is kept
and retried on every later cycle, and the error is raised at ``flush``/``end_run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mltrack.errors import LoggingFailedError
from mltrack.records import Batch, Metric, Param, Tag
from mltrack.sinks import Sink
from mltrack.spool import RunSpool
from mltrack.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

logger = logging.getLogger("mltrack.writer")

# Queue item tags (first tuple element).
METRIC, PARAM, TAG, FLUSH = "m", "p", "t", "f"
MAX_PARAMS_TAGS_BYTES = 800_000  # below MLflow's 1 MB request cap


def split_batch(batch: Batch) -> list[Batch]:
    """Split a batch into batches that MLflow's ``log_batch`` accepts."""
    small: list[Batch] = []
    params: list[Any] = list(batch.params)
    tags: list[Any] = list(batch.tags)
    while params or tags:
        chunk = Batch(batch.run_id)
        size = 0
        for source, target in ((params, chunk.params), (tags, chunk.tags)):
            taken: list[Any] = target
            while source and len(taken) < MAX_PARAMS_TAGS_PER_BATCH:
                item_size = len(source[0].key) + len(source[0].value)
                if taken and size + item_size > MAX_PARAMS_TAGS_BYTES:
                    break
                taken.append(source.pop(0))
                size += item_size
        small.append(chunk)
    metrics = batch.metrics
    start = 0
    for chunk in small:  # fill the room left beside params and tags first
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(chunk))
        chunk.metrics = metrics[start : start + room]
        start += room
    while start < len(metrics):
        small.append(Batch(batch.run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH]))
        start += MAX_METRICS_PER_BATCH
    return small


@dataclass
class _RunRoute:
    primary: Sink
    spool: RunSpool | None = None
    unsent: list[tuple[Batch, list[int]]] = field(default_factory=list)
    error: BaseException | None = None

    def confirmed(self, slots: list[int]) -> None:
        if self.spool is not None and slots:
            self.spool.mark_sent(slots)


class BackgroundWriter:
    """One per process: drains the queue into each run's store and the extra sinks."""

    def __init__(
        self,
        *,
        flush_interval_s: float = 0.1,
        retries: int = 5,
        backoff_s: float = 0.2,
        extra_sinks: list[Sink] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.flush_interval_s = flush_interval_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.extra_sinks = list(extra_sinks or [])
        self.degraded: dict[str, str] = {}
        self._sleep = sleep
        self._queue: deque[tuple[Any, ...]] = deque()
        # The hot path binds this directly: appending to a deque is atomic under the GIL.
        self.put: Callable[[tuple[Any, ...]], None] = self._queue.append
        self._routes: dict[str, _RunRoute] = {}
        self._routes_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mltrack-writer", daemon=True)
        self._thread.start()

    # -- run routing ----------------------------------------------------------------

    def open_run(
        self, run_id: str, primary: Sink, experiment_id: str, run_name: str | None, spool: RunSpool | None = None
    ) -> None:
        with self._routes_lock:
            route = self._routes.setdefault(run_id, _RunRoute(primary))
            if spool is not None:
                route.spool = spool
        for sink in self.extra_sinks:
            self._call_extra(sink, "start_run", run_id, experiment_id, run_name)

    def close_run(self, run_id: str, status: str) -> None:
        for sink in self.extra_sinks:
            self._call_extra(sink, "end_run", run_id, status)

    # -- flushing -------------------------------------------------------------------

    def flush(self, timeout: float | None = None, run_id: str | None = None) -> None:
        """Wait until everything queued before this call is written.

        Raises ``LoggingFailedError`` if data for ``run_id`` (or any run) could not be
        written, or if the wait timed out; that data is kept and retried later.
        """
        if not self._thread.is_alive():
            self._drain()  # writer gone (interpreter shutting down): write inline
        else:
            done = threading.Event()
            self._queue.append((FLUSH, done))
            self._wake.set()
            if not done.wait(timeout):
                pending = len(self._queue)
                raise LoggingFailedError(
                    f"timed out after {timeout:.1f}s waiting for the store; {pending} queued "
                    "item(s) are still being retried in the background",
                    hint="check that the tracking server is reachable, then call mltrack.flush()",
                )
        self._raise_failures(run_id)

    def _raise_failures(self, run_id: str | None) -> None:
        with self._routes_lock:
            routes = [(rid, r) for rid, r in self._routes.items() if run_id in (None, rid)]
        for rid, route in routes:
            if route.unsent:
                points = sum(len(b) for b, _ in route.unsent)
                raise LoggingFailedError(
                    f"{points} item(s) of run {rid} could not be written to the store after "
                    f"{self.retries} retries: {_describe(route.error)}",
                    hint="they are kept and retried; fix the store, then call mltrack.flush()",
                )

    def forget_run(self, run_id: str) -> list[Batch]:
        """Stop routing ``run_id``; return whatever was never written."""
        with self._routes_lock:
            route = self._routes.pop(run_id, None)
        return [batch for batch, _ in route.unsent] if route else []

    def pending_items(self, run_id: str) -> int:
        with self._routes_lock:
            route = self._routes.get(run_id)
        return sum(len(b) for b, _ in route.unsent) if route else 0

    # -- the thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # the writer must outlive any bug in one cycle
                logger.exception("mltrack writer cycle failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        self._drain()

    def _drain(self) -> None:
        pending: dict[str, Batch] = {}
        slots: dict[str, list[int]] = {}
        queue = self._queue
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            kind = item[0]
            if kind == METRIC:
                batch = pending.get(item[1])
                if batch is None:
                    batch = pending[item[1]] = Batch(item[1])
                    slots[item[1]] = []
                batch.metrics.append(Metric(item[2], item[3], item[4], item[5]))
                slots[item[1]].append(item[6])
            elif kind in (PARAM, TAG):
                batch = pending.get(item[1])
                if batch is None:
                    batch = pending[item[1]] = Batch(item[1])
                    slots[item[1]] = []
                if kind == PARAM:
                    batch.params.append(Param(item[2], item[3]))
                else:
                    batch.tags.append(Tag(item[2], item[3]))
            elif kind == FLUSH:
                self._write(pending, slots)
                pending, slots = {}, {}
                item[1].set()
        self._write(pending, slots)

    def _write(self, pending: dict[str, Batch], slots: dict[str, list[int]]) -> None:
        with self._routes_lock:
            stuck = [r for r in self._routes.values() if r.unsent]
        for route in stuck:
            self._retry_unsent(route)
        for run_id, batch in pending.items():
            with self._routes_lock:
                found = self._routes.get(run_id)
            if found is None:
                logger.error("mltrack writer: data for unknown run %s dropped", run_id)
                continue
            run_slots = [i for i in slots[run_id] if i >= 0]
            start = 0
            for small in split_batch(batch):
                # split_batch keeps metric order, so each part's slots are the next run of slots
                part_slots = run_slots[start : start + len(small.metrics)] if run_slots else []
                start += len(small.metrics)
                self._deliver(found, small, part_slots, retries=self.retries)
                for sink in self.extra_sinks:
                    self._call_extra(sink, "log_batch", small)

    def _retry_unsent(self, route: _RunRoute) -> None:
        # Kept batches leave the list only once written, so a concurrent flush() never
        # sees an empty list while a retry is still in flight.
        while route.unsent:
            batch, part_slots = route.unsent[0]
            try:
                route.primary.log_batch(batch)
            except Exception as exc:
                route.error = exc
                return
            route.unsent.pop(0)
            route.error = None
            route.confirmed(part_slots)

    def _deliver(self, route: _RunRoute, batch: Batch, part_slots: list[int], *, retries: int) -> None:
        if route.unsent:  # keep order: once something is stuck, queue behind it
            route.unsent.append((batch, part_slots))
            return
        delay = self.backoff_s
        for attempt in range(retries + 1):
            try:
                route.primary.log_batch(batch)
                route.error = None
                route.confirmed(part_slots)
                return
            except Exception as exc:
                route.error = exc
                if attempt < retries:
                    logger.warning(
                        "mltrack: store write failed (%s); retry %d/%d in %.1fs",
                        _describe(exc),
                        attempt + 1,
                        retries,
                        delay,
                    )
                    self._sleep(delay)
                    delay *= 2
        route.unsent.append((batch, part_slots))

    def _call_extra(self, sink: Sink, method: str, *args: Any) -> None:
        try:
            getattr(sink, method)(*args)
        except Exception as exc:
            if sink.name not in self.degraded:
                logger.warning("mltrack sink %r failed in %s and is degraded: %s", sink.name, method, _describe(exc))
            self.degraded[sink.name] = f"{method}: {_describe(exc)}"

    def close_sinks(self) -> None:
        for sink in self.extra_sinks:
            self._call_extra(sink, "flush")
            self._call_extra(sink, "close")


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"
