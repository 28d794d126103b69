"""Delivering records to a store so that one refused record never blocks the others.

Used by the background writer and by replay. A store error is either *transient*
(the store is unreachable, busy or failing: retry the same data later) or a
*refusal* (the store answered that this data is invalid: retrying cannot help). A
refused batch is split in halves until the refused records are found; every other
record is delivered, and the refused ones are returned with the store's reason so the
caller can quarantine them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrack.storage.records import Batch, Metric, Param, Tag

Record = Metric | Param | Tag

# MLflow error codes that mean "this request's data is invalid", never "try later".
_REFUSAL_CODES = {
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_STATE",
    "RESOURCE_ALREADY_EXISTS",
}
_TRANSIENT_SQL_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"}


@dataclass(frozen=True)
class Item:
    """A record on its way to the store, with the spool slot it came from (-1: none)."""

    record: Record
    slot: int = -1


@dataclass(frozen=True)
class Refused:
    """A record the store refused, and why."""

    item: Item
    reason: str

    def as_json(self) -> dict[str, Any]:
        kind = {Metric: "metric", Param: "param", Tag: "tag"}[type(self.item.record)]
        return {"kind": kind, "record": list(self.item.record), "reason": self.reason}


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


REFUSED, TRANSIENT, AMBIGUOUS = "refused", "transient", "ambiguous"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _classify_one(exc: BaseException) -> str | None:
    names = {cls.__name__ for cls in type(exc).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    if "sqlalchemy" in modules or "sqlite3" in modules or "psycopg2" in modules:
        if names & _TRANSIENT_SQL_ERRORS:
            return TRANSIENT
        if names & {"IntegrityError", "DataError", "StatementError", "ProgrammingError"}:
            return REFUSED
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):  # requests' errors are OSErrors too
        return TRANSIENT
    code = getattr(exc, "error_code", None)
    if isinstance(code, str) and code in _REFUSAL_CODES:
        return REFUSED
    if isinstance(exc, (ValueError, TypeError, OverflowError, UnicodeError, ArithmeticError)) and not isinstance(
        code, str
    ):
        # a conversion the store's driver attempted on a value: the data is at fault
        return REFUSED
    return None


def classify(exc: BaseException) -> str:
    """``REFUSED`` (the data is invalid: retrying cannot help), ``TRANSIENT`` (the
    store did not answer: retry later) or ``AMBIGUOUS`` (the store failed on this
    request, e.g. an HTTP 500 from a server whose database refused a row)."""
    for link in _chain(exc):
        verdict = _classify_one(link)
        if verdict is not None:
            return verdict
    status = getattr(exc, "get_http_status_code", None)
    code = status() if callable(status) else None
    if isinstance(code, int) and code in (502, 503, 504, 408, 429):
        return TRANSIENT
    if getattr(exc, "error_code", None) in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
        return TRANSIENT
    return AMBIGUOUS


def to_batch(run_id: str, items: Sequence[Item]) -> Batch:
    batch = Batch(run_id)
    for item in items:
        record = item.record
        if type(record) is Metric:
            batch.metrics.append(record)
        elif type(record) is Param:
            batch.params.append(record)
        else:
            batch.tags.append(record)  # type: ignore[arg-type]
    return batch


def deliver_isolating(
    write: Callable[[Batch], None],
    run_id: str,
    items: Sequence[Item],
    probe: Callable[[], bool] | None = None,
) -> list[Refused]:
    """Write ``items`` as one batch; if the store refuses it, find the refused records.

    Transient errors propagate (nothing of the failing part was written, the caller
    retries later). An ambiguous failure counts as a refusal only while ``probe``
    says the store is otherwise healthy, so a failing server never gets data
    quarantined. Returns the refused records; everything else has been written.
    """
    try:
        write(to_batch(run_id, items))
        return []
    except Exception as exc:
        verdict = classify(exc)
        if verdict == TRANSIENT:
            raise
        if verdict == AMBIGUOUS and (probe is None or not probe()):
            raise
        if len(items) == 1:
            return [Refused(items[0], describe(exc))]
    middle = len(items) // 2
    return deliver_isolating(write, run_id, items[:middle], probe) + deliver_isolating(
        write, run_id, items[middle:], probe
    )


class Quarantine:
    """Refused records of one run, kept as JSON lines under ``<data_dir>/quarantine/``."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.path = root / run_id / "refused.jsonl"
        self.count = 0
        self.first_reasons: list[str] = []

    def add(self, refused: list[Refused]) -> None:
        if not refused:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = int(time.time() * 1000)
        lines = "".join(
            json.dumps({**r.as_json(), "refused_ms": now, "pid": os.getpid()}, ensure_ascii=True) + "\n"
            for r in refused
        )
        with open(self.path, "a", encoding="ascii") as fh:
            fh.write(lines)
        self.count += len(refused)
        for r in refused:
            if len(self.first_reasons) < 3:
                self.first_reasons.append(f"{r.as_json()['kind']} {r.item.record[0]!r}: {r.reason}")

    def summary(self) -> str:
        return f"{self.count} record(s) refused by the store, kept in {self.path}; first: " + "; ".join(
            self.first_reasons
        )
