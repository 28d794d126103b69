"""The ``Sink`` contract: where the background writer sends batches.

The MLflow store is the primary sink (its failures are retried and then raised at
``flush``/``end_run``); plugins add extra sinks through ``register_sinks``, whose
failures are isolated: logged, the sink marked degraded, the run unaffected.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from mltrack.errors import PluginError
from mltrack.storage.records import Batch


class Sink(ABC):
    """Receives every batch of params, metrics and tags the writer sends.

    Sinks run in the writer: by default the writer process of the job's process tree,
    which calls every method, one at a time; with ``writer = "thread"`` a thread of each
    logging process calls ``log_batch``, ``flush`` and ``close``, and ``start_run`` and
    ``end_run`` come from the thread that starts or ends the run. Data replayed from a spool
    after a crash goes to the store only.
    """

    #: unique name, shown by ``mltrack plugins`` and in degraded-sink warnings
    name: str = ""

    def start_run(self, run_id: str, experiment_id: str, run_name: str | None) -> None:  # noqa: B027
        """A run started (called before its first batch)."""

    @abstractmethod
    def log_batch(self, batch: Batch) -> None:
        """Write one batch; raise to report a failure."""

    def end_run(self, run_id: str, status: str) -> None:  # noqa: B027
        """A run ended with ``status``; all its batches have been delivered."""

    def flush(self) -> None:  # noqa: B027
        """Make everything delivered so far durable."""

    def close(self) -> None:  # noqa: B027
        """Release resources; called once at interpreter exit."""


def validate_sink(obj: object) -> str:
    """Registry validator: sinks must be ``Sink`` instances with a name."""

    if not isinstance(obj, Sink):
        raise PluginError(f"register_sinks got {obj!r}, which is not a mltrack.Sink instance")
    if not obj.name:
        raise PluginError(f"sink {type(obj).__name__} has an empty `name`")
    return obj.name
