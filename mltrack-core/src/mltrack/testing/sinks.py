"""A conformance suite every ``Sink`` implementation runs (ours and third parties').

Subclass it in your plugin's tests under a ``Test*`` name and implement ``make_sink``;
implement ``read_back`` too if your sink can return what it stored, and the suite
checks the round trip::

    from mltrack.testing.sinks import SinkConformance

    class TestMySink(SinkConformance):
        def make_sink(self, tmp_path):
            return MySink(tmp_path / "out")

Standard tests may not be overridden silently: mark a deliberate override with
``@overrides_standard_test("why")``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mltrack.storage.records import Batch, Metric, Param, Tag
from mltrack.storage.sinks import Sink
from mltrack.storage.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

# pytest is imported inside the checks: the sink kit is importable outside a test run.

F = TypeVar("F", bound=Callable[..., Any])


def overrides_standard_test(reason: str) -> Callable[[F], F]:
    """Allow a subclass to replace a standard test, saying why."""

    def mark(func: F) -> F:
        func.__mltrack_override__ = reason  # type: ignore[attr-defined]
        return func

    return mark


class SinkConformance:
    """Standard behaviour of a ``mltrack.Sink``."""

    run_id = "0123456789abcdef0123456789abcdef"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            overrides = name.startswith("test_") and hasattr(SinkConformance, name)
            if overrides and not hasattr(value, "__mltrack_override__"):
                raise TypeError(
                    f"{cls.__name__}.{name} overrides a standard sink test; "
                    "mark it with @overrides_standard_test('reason') if that is deliberate"
                )

    # -- to implement ------------------------------------------------------------------

    def make_sink(self, tmp_path: Path) -> Sink:
        raise NotImplementedError("implement make_sink(tmp_path) to return a fresh sink")

    def read_back(self, sink: Sink, run_id: str) -> Batch | None:
        """Everything the sink stored for ``run_id`` merged into one batch, or None
        if the sink cannot be read back (the round-trip test is then skipped)."""
        return None

    # -- the standard tests --------------------------------------------------------------

    @staticmethod
    def full_batch(run_id: str) -> Batch:
        return Batch(
            run_id,
            metrics=[
                Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(MAX_METRICS_PER_BATCH - 200)
            ],
            params=[Param(f"p{i}", str(i)) for i in range(MAX_PARAMS_TAGS_PER_BATCH)],
            tags=[Tag(f"t{i}", "x" * 100) for i in range(MAX_PARAMS_TAGS_PER_BATCH)],
        )

    def test_is_a_named_sink(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        assert isinstance(sink, Sink)
        assert isinstance(sink.name, str) and sink.name

    def test_full_lifecycle_accepts_batches_at_mlflow_limits(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        sink.start_run(self.run_id, "0", "conformance")
        sink.log_batch(self.full_batch(self.run_id))
        sink.log_batch(Batch(self.run_id))  # an empty batch is harmless
        sink.end_run(self.run_id, "FINISHED")
        sink.flush()
        sink.close()

    def test_round_trip_keeps_every_point(self, tmp_path: Path) -> None:
        import pytest

        sink = self.make_sink(tmp_path)
        sink.start_run(self.run_id, "0", "conformance")
        sent = self.full_batch(self.run_id)
        sink.log_batch(sent)
        sink.end_run(self.run_id, "FINISHED")
        sink.flush()
        got = self.read_back(sink, self.run_id)
        if got is None:
            pytest.skip("this sink cannot be read back")
        assert sorted(got.metrics) == sorted(sent.metrics)
        assert sorted(got.params) == sorted(sent.params)
        assert sorted(got.tags) == sorted(sent.tags)

    def test_runs_are_kept_apart(self, tmp_path: Path) -> None:
        import pytest

        sink = self.make_sink(tmp_path)
        other = "f" * 32
        for run_id, value in ((self.run_id, 1.0), (other, 2.0)):
            sink.start_run(run_id, "0", None)
            sink.log_batch(Batch(run_id, metrics=[Metric("m", value, 1, 0)]))
            sink.end_run(run_id, "FINISHED")
        sink.flush()
        first, second = self.read_back(sink, self.run_id), self.read_back(sink, other)
        if first is None or second is None:
            pytest.skip("this sink cannot be read back")
        assert [m.value for m in first.metrics] == [1.0]
        assert [m.value for m in second.metrics] == [2.0]
