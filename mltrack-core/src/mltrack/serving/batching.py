"""Micro-batching: concurrent requests to a batchable model share one ``predict`` call.

Requests queue on the event loop. The batcher takes the oldest one and waits until
``max_batch_size`` rows are queued or ``max_wait_ms`` have passed since that request
arrived, then predicts every queued request with the same batch key (up to the row
limit) in one call on its worker thread. While that call runs, new requests queue up, so
under load batches grow by themselves and at low load a request waits at most
``max_wait_ms``. One ``predict`` runs at a time: a model need not be thread-safe, and with
the GIL a second one would not run faster.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from mltrack.serving.inference import Outcome, internal_failure
from mltrack.serving.protocol import ModelInput, error_body

logger = logging.getLogger("mltrack.serving")

Score = Callable[[Sequence[ModelInput]], list[Outcome]]


@dataclass(eq=False)
class _Job:
    item: ModelInput
    future: asyncio.Future[Outcome]
    arrived: float

    @property
    def weight(self) -> int:
        """Rows it adds to a batch (an input that is never batched counts as one)."""
        return max(self.item.rows, 1)


class MicroBatcher:
    """Queues requests and predicts them in batches (see the module docstring).

    Args:
        score: predicts a list of inputs (one batch key) and returns one outcome each;
            called on ``executor``.
        max_batch_size: most rows in one batch (a larger single request runs alone).
        max_wait_ms: longest a request waits for others to join its batch.
        batching: a callable saying whether batching is still on (the scorer turns it
            off when the model's output does not split by rows).
    """

    def __init__(
        self,
        score: Score,
        executor: Executor,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        batching: Callable[[], bool] = lambda: True,
    ) -> None:
        self._score = score
        self._executor = executor
        self.max_rows = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._batching = batching
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Job] = deque()
        self._pending_rows = 0
        self._idle = True
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: sizes (in requests) of the batches predicted so far, newest last (for logs and tests)
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None:
            # first use, a new event loop (a test client's), or after close(): queue state belongs to its loop
            self._loop = loop
            self._pending = deque()
            self._pending_rows = 0
            self._idle = True
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name="mltrack-serve-batcher")
        return loop

    async def submit(self, item: ModelInput) -> Outcome:
        """Queue ``item`` and wait for its outcome."""
        loop = self._start()
        job = _Job(item, loop.create_future(), loop.time())
        self._pending.append(job)
        self._pending_rows += job.weight
        if self._idle or self._pending_rows >= self.max_rows:
            self._wakeup.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._idle = True
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._idle = False
            deadline = self._pending[0].arrived + self.max_wait
            delay = deadline - loop.time()
            if delay > 0 and self._pending_rows < self.max_rows:
                self._wakeup.clear()
                timer = loop.call_later(delay, self._wakeup.set)
                await self._wakeup.wait()
                timer.cancel()
            batch = self._take()
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                outcomes = await loop.run_in_executor(self._executor, self._score, [job.item for job in batch])
            except Exception as exc:  # the scorer answers errors itself; this is a bug in it
                logger.exception("mltrack serve: scoring a batch failed")
                outcomes = [internal_failure(exc)] * len(batch)
            for job, outcome in zip(batch, outcomes, strict=True):
                if not job.future.done():
                    job.future.set_result(outcome)

    def _take(self) -> list[_Job]:
        """The next batch: the oldest request and the queued ones that can join it."""
        batch: list[_Job] = []
        rest: deque[_Job] = deque()
        rows = 0
        batching = self._batching()
        while self._pending:
            job = self._pending.popleft()
            if job.future.done():  # its client went away
                self._pending_rows -= job.weight
                continue
            if not batch:
                batch.append(job)
                rows = job.item.rows
                if job.item.key is None or not batching:
                    break
            elif job.item.key == batch[0].item.key and rows + job.item.rows <= self.max_rows:
                batch.append(job)
                rows += job.item.rows
            else:
                rest.append(job)
            if rows >= self.max_rows:
                break
        rest.extend(self._pending)
        self._pending = rest
        self._pending_rows -= sum(job.weight for job in batch)
        return batch

    async def close(self) -> None:
        """Stop the batcher; requests still queued are answered 503."""
        task, self._task = self._task, None
        if task is not None and self._loop is asyncio.get_running_loop():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        body = error_body("TEMPORARILY_UNAVAILABLE", "the server is shutting down")
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_result(Outcome(503, body))
        self._pending_rows = 0
