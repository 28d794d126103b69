"""The background writer: one thread per process delivers runs' data to their stores.

Metric points are not queued in memory: the logging call writes them to the run's
spool (see ``mltrack.storage.spool``) and the writer reads them back from there, at most
``MAX_METRICS_PER_BATCH`` at a time, so a backlog of any size (a long store outage)
costs disk, not the training process's memory, and is sent in full batches once the
store is back. Params and tags (rare) and metrics of runs without a spool go through
a small in-memory queue.

The writer wakes every ``flush_interval_ms`` (or when asked to flush), writes each
run's new data to its store and then hands the same batches to the extra sinks. A
store write that fails to reach the store is retried with exponential backoff, then
kept and retried on every later cycle; the error is raised at ``flush``/``end_run``.
A batch the store *refuses* is split until the refused records are found: every other
record is delivered, the refused ones go to the quarantine (see
``mltrack.storage.delivery``), and the run goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, Protocol

from mltrack.errors import LoggingFailedError
from mltrack.storage.delivery import Item, Quarantine, Refused, classify, deliver_isolating, describe, to_batch
from mltrack.storage.records import Batch, Metric, Param, Tag
from mltrack.storage.sinks import Sink
from mltrack.storage.spool import REFUSED, SENT, RunSpool, SpoolSlot, quarantine_root
from mltrack.storage.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

logger = logging.getLogger("mltrack.writer")

# What the logging calls queue for the writer. Plain tuples, typed: building a class instance per
# logged point would cost the hot path more than the append itself.
METRIC: Final = "m"
PARAM: Final = "p"
TAG: Final = "t"
FLUSH: Final = "f"
#: (METRIC, run id, key, value, timestamp ms, step, spool slot or -1)
MetricItem = tuple[Literal["m"], str, str, float, int, int, int]
#: (PARAM, run id, key, value)
ParamItem = tuple[Literal["p"], str, str, str]
#: (TAG, run id, key, value)
TagItem = tuple[Literal["t"], str, str, str]
#: (FLUSH, the request whose ``done`` is set once everything queued before it is written)
FlushItem = tuple[Literal["f"], "FlushRequest"]
QueueItem = MetricItem | ParamItem | TagItem | FlushItem
MAX_PARAMS_TAGS_BYTES = 800_000  # below MLflow's 1 MB request cap
FAILED_HINT = "they are kept and retried; fix the store, then call mltrack.flush()"


class SlotSource(Protocol):
    """Where a route's metric points are read from: this process's ``RunSpool``, or
    (in the writer process) a ``SpoolReader`` of another process's spool."""

    closed: bool

    def read_slots(self, start: int, bound: int | None, limit: int) -> tuple[list[SpoolSlot], int, int | None]: ...
    def mark(self, slots: list[int], state: int = SENT) -> None: ...
    def release_below(self, cursor: int) -> None: ...
    def trim(self) -> None: ...
    def written_since(self, cursor: int) -> int: ...


class FlushRequest(NamedTuple):
    """Asks the writer to deliver everything logged before it, then set ``done``."""

    done: threading.Event
    bounds: dict[str, int]  # run id -> spool slot index below which every returned call's point lies


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


def _items_in_parts(items: list[Item], run_id: str) -> list[list[Item]]:
    """``items`` cut into parts within MLflow's per-request limits (order kept)."""
    parts: list[list[Item]] = []
    current: list[Item] = []
    params_tags = size = 0
    for item in items:
        record = item.record
        is_metric = type(record) is Metric
        item_size = 0 if is_metric else len(record[0]) + len(record[1])  # type: ignore[arg-type]
        full = len(current) >= MAX_ENTITIES_PER_BATCH or (
            not is_metric and (params_tags >= MAX_PARAMS_TAGS_PER_BATCH or size + item_size > MAX_PARAMS_TAGS_BYTES)
        )
        if current and full:
            parts.append(current)
            current, params_tags, size = [], 0, 0
        current.append(item)
        if not is_metric:
            params_tags += 1
            size += item_size
    if current:
        parts.append(current)
    return parts


@dataclass
class _RunRoute:
    run_id: str
    primary: Sink
    key: str = ""  # what the route is found by: the run id, or (in the writer process) a spool folder
    spool: SlotSource | None = None
    quarantine: Quarantine | None = None
    backlog: list[Item] = field(default_factory=list)  # queued records not yet written
    cursor: int = 0  # spool slots below this are sent, refused, skipped or abandoned
    stuck: int = 0  # items of the last delivery that could not reach the store
    error: BaseException | None = None
    refused: list[Refused] = field(default_factory=list)


class BackgroundWriter:
    """One per process: delivers each run's data to its store and the extra sinks."""

    def __init__(
        self,
        *,
        flush_interval_s: float = 0.1,
        retries: int = 5,
        backoff_s: float = 0.2,
        extra_sinks: list[Sink] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        quarantine_dir: Path | None = None,
        start_thread: bool = True,
    ) -> None:
        self.flush_interval_s = flush_interval_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.extra_sinks = list(extra_sinks or [])
        self.quarantine_dir = quarantine_dir
        self.degraded: dict[str, str] = {}
        self.progress = 0  # grows with every delivered batch: waits measure stalls by it
        self._sleep = sleep
        self._queue: deque[QueueItem] = deque()
        # The hot path binds this directly: appending to a deque is atomic under the GIL.
        self.put: Callable[[QueueItem], None] = self._queue.append
        self._routes: dict[str, _RunRoute] = {}
        self._routes_lock = threading.Lock()
        self._cycle_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mltrack-writer", daemon=True)
        if start_thread:  # the writer process drives cycle() from its own loop instead
            self._thread.start()

    # -- run routing ----------------------------------------------------------------

    def open_run(
        self,
        run_id: str,
        primary: Sink,
        experiment_id: str,
        run_name: str | None,
        spool: SlotSource | None = None,
        *,
        key: str | None = None,
        quarantine_dir: Path | None = None,
    ) -> None:
        """Route ``run_id``'s data to ``primary``. ``key`` (default: the run id) names the
        route, so one run can have several (one per spool, in the writer process)."""
        key = key or run_id
        with self._routes_lock:
            route = self._routes.get(key)
            if route is None:
                where = quarantine_dir or self.quarantine_dir
                if isinstance(spool, RunSpool) and self.quarantine_dir is not None:
                    # beside the run's spool: the data_dir in force now, not the one when the writer started
                    where = quarantine_dir or quarantine_root(spool.root.parent)
                quarantine = Quarantine(where, run_id) if where is not None else None
                route = self._routes[key] = _RunRoute(run_id, primary, key, quarantine=quarantine)
            if spool is not None:
                route.spool = spool
                route.cursor = 0
        for sink in self.extra_sinks:
            self._call_extra(sink, "start_run", run_id, experiment_id, run_name)

    def close_run(self, run_id: str, status: str) -> None:
        for sink in self.extra_sinks:
            self._call_extra(sink, "end_run", run_id, status)

    def refused(self, run_id: str) -> tuple[list[Refused], Quarantine | None]:
        """Records of ``run_id`` the store refused (kept in the quarantine)."""
        with self._routes_lock:
            route = self._routes.get(run_id)
        return (list(route.refused), route.quarantine) if route else ([], None)

    # -- flushing -------------------------------------------------------------------

    def flush(self, timeout: float | None = None, run_id: str | None = None) -> None:
        """Wait until everything logged before this call is written.

        ``timeout`` counts from the writer's last progress, so a large backlog that is
        being delivered is waited for, while a store that stopped answering is not.
        Raises ``LoggingFailedError`` if data for ``run_id`` (or any run) could not be
        written, or if the wait timed out; that data is kept and retried later.
        """
        with self._routes_lock:
            routes = list(self._routes.values())
        bounds = {r.key: r.spool.claim_bound() for r in routes if isinstance(r.spool, RunSpool) and not r.spool.closed}
        if not self._thread.is_alive():
            self._cycle(bounds)  # writer gone (interpreter shutting down): write inline
        else:
            request = FlushRequest(threading.Event(), bounds)
            self._queue.append((FLUSH, request))
            self._wake.set()
            if not self._wait(request.done, timeout):
                raise LoggingFailedError(
                    f"timed out: the store made no progress for {timeout:.1f}s; "
                    f"{self._pending_total()} item(s) are still being retried in the background",
                    hint="check that the tracking server is reachable, then call mltrack.flush()",
                )
        self._raise_failures(run_id)

    def _wait(self, done: threading.Event, timeout: float | None) -> bool:
        if timeout is None:
            return done.wait()
        progress = self.progress
        deadline = time.monotonic() + timeout
        while not done.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
            if self.progress != progress:
                progress = self.progress
                deadline = time.monotonic() + timeout
            elif time.monotonic() >= deadline:
                return False
        return True

    def _pending_total(self) -> int:
        with self._routes_lock:
            routes = list(self._routes.values())
        return len(self._queue) + sum(self._pending(r) for r in routes)

    def _pending(self, route: _RunRoute) -> int:
        spooled = route.spool.written_since(route.cursor) if route.spool is not None and not route.spool.closed else 0
        return len(route.backlog) + spooled

    def _raise_failures(self, run_id: str | None) -> None:
        with self._routes_lock:
            routes = [r for rid, r in self._routes.items() if run_id in (None, rid)]
        for route in routes:
            message = self._failure(route)
            if message is not None:
                raise LoggingFailedError(message, hint=FAILED_HINT)

    def _failure(self, route: _RunRoute) -> str | None:
        if route.error is None:
            return None
        points = max(self._pending(route), route.stuck)
        if points == 0:
            return None
        return (
            f"{points} item(s) of run {route.run_id} could not be written to the store after "
            f"{self.retries} retries: {describe(route.error)}"
        )

    def route_state(self, key: str) -> tuple[str | None, int, list[Refused]]:
        """A route's failure message (as ``flush`` would raise it), pending items and refused records."""
        with self._routes_lock:
            route = self._routes.get(key)
        if route is None:
            return None, 0, []
        return self._failure(route), self._pending(route), list(route.refused)

    def forget_run(self, run_id: str) -> list[Batch]:
        """Stop routing ``run_id``; return the queued records that were never written."""
        with self._routes_lock:
            route = self._routes.pop(run_id, None)
        if route is None or not route.backlog:
            return []
        return [to_batch(run_id, part) for part in _items_in_parts(route.backlog, run_id)]

    def pending_items(self, run_id: str) -> int:
        with self._routes_lock:
            route = self._routes.get(run_id)
        return self._pending(route) if route else 0

    # -- the thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._cycle()
            except Exception:  # the writer must outlive any bug in one cycle
                logger.exception("mltrack writer cycle failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        self._cycle()

    def cycle(self, bounds: dict[str, int] | None = None) -> None:
        """One delivery cycle, driven by the caller (the writer process has no thread)."""
        self._cycle(bounds)

    def _cycle(self, extra_bounds: dict[str, int] | None = None) -> None:
        """Take the queue, deliver every run's data, then release the flushes taken."""
        with self._cycle_lock:
            bounds = dict(extra_bounds or {})
            flushes: list[FlushRequest] = []
            queue = self._queue
            with self._routes_lock:
                routes = self._routes
                while True:
                    try:
                        item = queue.popleft()
                    except IndexError:
                        break
                    if item[0] == FLUSH:
                        request = item[1]
                        flushes.append(request)
                        for rid, bound in request.bounds.items():
                            bounds[rid] = max(bound, bounds.get(rid, 0))
                        continue
                    route = routes.get(item[1])
                    if route is None:
                        logger.error("mltrack writer: data for unknown run %s dropped", item[1])
                    elif item[0] == METRIC:
                        route.backlog.append(Item(Metric(item[2], item[3], item[4], item[5])))
                    elif item[0] == PARAM:
                        route.backlog.append(Item(Param(item[2], item[3])))
                    else:
                        route.backlog.append(Item(Tag(item[2], item[3])))
                active = list(routes.values())
            try:
                for route in active:
                    self._deliver_route(route, bounds.get(route.key))
            finally:
                for request in flushes:
                    request.done.set()

    def _deliver_route(self, route: _RunRoute, bound: int | None) -> None:
        if route.spool is not None:
            route.spool.trim()  # first: during an outage the deliveries below stop early
        if route.backlog:
            done = 0
            for part in _items_in_parts(route.backlog, route.run_id):
                if not self._deliver(route, part):
                    del route.backlog[:done]
                    return
                done += len(part)
            del route.backlog[:done]
        spool = route.spool
        if spool is None or spool.closed:
            return
        position = route.cursor
        while True:
            slots, after, hole = spool.read_slots(position, bound, MAX_METRICS_PER_BATCH)
            if slots:
                part = [Item(Metric(s.key, s.value, s.timestamp, s.step), s.slot) for s in slots]
                if not self._deliver(route, part):
                    return
            if position == route.cursor:
                route.cursor = hole if hole is not None else after
                spool.release_below(route.cursor)
            if not slots or after == position:
                return
            position = after

    def _deliver(self, route: _RunRoute, part: list[Item]) -> bool:
        """Write one part to the run's store; False if the store could not be reached."""
        attempts = self.retries + 1 if route.error is None else 1
        delay = self.backoff_s
        probe = getattr(route.primary, "probe", None)
        for attempt in range(attempts):
            try:
                refused = deliver_isolating(
                    route.primary.log_batch, route.run_id, part, (lambda: bool(probe(route.run_id))) if probe else None
                )
            except Exception as exc:
                route.error = exc
                route.stuck = len(part)
                if attempt + 1 < attempts:
                    logger.warning(
                        "mltrack: store write failed (%s); retry %d/%d in %.1fs",
                        describe(exc),
                        attempt + 1,
                        self.retries,
                        delay,
                    )
                    self._sleep(delay)
                    delay *= 2
                continue
            route.error = None
            route.stuck = 0
            self.progress += 1
            if refused:
                self._quarantine(route, refused)
            refused_ids = {id(r.item) for r in refused}
            if route.spool is not None:
                route.spool.mark([i.slot for i in part if i.slot >= 0 and id(i) not in refused_ids], SENT)
            delivered = [i for i in part if id(i) not in refused_ids]
            if delivered and self.extra_sinks:
                batch = to_batch(route.run_id, delivered)
                for sink in self.extra_sinks:
                    self._call_extra(sink, "log_batch", batch)
            return True
        return False

    def _quarantine(self, route: _RunRoute, refused: list[Refused]) -> None:
        route.refused.extend(refused)
        if route.spool is not None:
            route.spool.mark([r.item.slot for r in refused if r.item.slot >= 0], REFUSED)
        if route.quarantine is not None:
            try:
                route.quarantine.add(refused)
            except OSError as exc:
                logger.error("mltrack: could not write refused records to %s: %s", route.quarantine.path, exc)
        # info, not warning: end_run warns once for the whole run (RecordsRefusedWarning)
        logger.info(
            "mltrack: the store refused %d record(s) of run %s (%s); the rest was delivered",
            len(refused),
            route.run_id,
            refused[0].reason,
        )

    def _call_extra(self, sink: Sink, method: str, *args: Any) -> None:
        try:
            getattr(sink, method)(*args)
        except Exception as exc:
            if sink.name not in self.degraded:
                logger.warning("mltrack sink %r failed in %s and is degraded: %s", sink.name, method, describe(exc))
            self.degraded[sink.name] = f"{method}: {describe(exc)}"

    def close_sinks(self) -> None:
        for sink in self.extra_sinks:
            self._call_extra(sink, "flush")
            self._call_extra(sink, "close")


def is_refusal(exc: BaseException) -> bool:
    """Whether a store error means the data itself was refused."""
    return classify(exc) == "refused"
