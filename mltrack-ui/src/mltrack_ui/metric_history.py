"""Metric histories for charts: many runs at once, each cut to a point budget on the server.

A 100,000-step metric is never shipped whole: rows are read as plain tuples (on a SQL
store straight from MLflow's ``metrics`` table, through its (run, key, step) index) and
reduced with ``minmax_downsample``. A step range reads only that window, which is how a
zoomed chart gets full detail back. Many series (a compare of 100 runs) are read on a few
connections at once: the database drivers let go of the GIL while a query runs.

A cut series is kept in memory (``SeriesCache``) under its run, key, budget and step window,
with the run's row of MLflow's ``latest_metrics`` for that key as its fingerprint: a series
that got a new last point is read again, a finished run's series is read once. Opening the
same compare again then costs one ``latest_metrics`` query instead of every row.

A first open of many series far longer than their budget (a compare of 100 runs x 100,000
steps, 10 million rows) does not read every row: it is *sampled* by index seeks, the first
point at or after each of a number of equal step ranges (``SAMPLE_SEEKS`` seeks for the whole
request, at most the budget per series, instead of every row), and marked ``"sampled": true``,
as it may miss a spike. A background thread then cuts the series exactly
(min/max per range) into the cache, so the next open shows every spike. A step window (a zoom)
and a series that fits the budget always get the exact cut.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrack import InvalidInputError
from mltrack.extend import MlflowStore
from mltrack_ui.downsample import MIN_POINTS, minmax_downsample
from mltrack_ui.sql_store import sqlalchemy_store

# The charts workspace asks for 5 metrics of 50 runs at once.
MAX_SERIES = 250
MAX_POINTS = 20_000
DEFAULT_POINTS = 1_000
# More threads than this only queue up on the connection pool (and on a 2-core machine).
READERS = 4
# Points held by the cache, all series together (~24 bytes each: step, value, timestamp).
CACHE_POINTS = 2_000_000

# Series of up to this many times their budget are read together, many in one query, and cut in
# Python: for 100 series of 1,000 rows at 300 points that took 0.3-0.4 s against 0.55 s cut one by
# one in SQL (4 queries each); at 5,000 rows a series the SQL cut wins (1.1 against 1.7 s).
BATCH_FACTOR = 4
METRICS_INDEX = "index_metrics_run_uuid_key_step"
# A series sampled on its first open: more rows (guessed from its last step) than both of these,
# in a request whose such series hold more than SAMPLE_TOTAL_ROWS together. The exact cut reads
# ~1 million rows a second on a busy 2-core machine: one 100,000-step chart gets it at once, a
# compare of 100 such runs (10 million rows) is sampled.
SAMPLE_ROWS = 10_000
SAMPLE_FACTOR = 8
SAMPLE_TOTAL_ROWS = 1_000_000
# Index seeks for a request's sampled series together: each costs a random read of the metrics
# table (~25 us, 14 ms for 400 of one series on a busy machine), so 100 series at the compare's
# 400-point budget took 1-2 s; shared out, each of 100 series gets 200 points (0.5 s) until its
# exact cut, at the full budget, replaces it.
SAMPLE_SEEKS = 20_000
SAMPLE_MIN_POINTS = 50

logger = logging.getLogger(__name__)

CacheKey = tuple[str, str, str, int, int | None, int | None]


class SeriesCache:
    """Cut series by (store, run, key, budget, window), least recently used first out."""

    def __init__(self, max_points: int = CACHE_POINTS) -> None:
        self.max_points = max_points
        self._items: OrderedDict[CacheKey, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def get(self, key: CacheKey, fingerprint: Any) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != fingerprint:
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: CacheKey, fingerprint: Any, series: dict[str, Any]) -> None:
        size = len(series["steps"])
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._points -= len(old[1]["steps"])
            self._items[key] = (fingerprint, series)
            self._points += size
            while self._points > self.max_points and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._points -= len(dropped["steps"])

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._points = 0


CACHE = SeriesCache()


@dataclass
class HistoryQuery:
    run_ids: list[str]
    keys: list[str]
    max_points: int = DEFAULT_POINTS
    step_min: int | None = None
    step_max: int | None = None

    def __post_init__(self) -> None:
        if not self.run_ids or not self.keys:
            raise InvalidInputError("run_ids/keys", (self.run_ids, self.keys), "name at least one run and one key")
        if len(self.run_ids) * len(self.keys) > MAX_SERIES:
            raise InvalidInputError(
                "run_ids", len(self.run_ids), f"at most {MAX_SERIES} series (runs x keys) per request"
            )
        if not MIN_POINTS <= self.max_points <= MAX_POINTS:
            raise InvalidInputError("max_points", self.max_points, f"must be between {MIN_POINTS} and {MAX_POINTS}")


def metric_histories(store: MlflowStore, query: HistoryQuery) -> list[dict[str, Any]]:
    """One series per (run, key): ``{run_id, key, steps, values, timestamps, total, downsampled}``.

    ``timestamps`` are epoch milliseconds, for charts drawn against (relative) time.
    """
    backend = sqlalchemy_store(store)
    pairs = [(run_id, key) for run_id in query.run_ids for key in query.keys]
    # Only a SQL store has latest_metrics to tell a changed series from an unchanged one.
    fingerprints = _fingerprints(backend, query) if backend is not None else {}
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def cache_key(pair: tuple[str, str]) -> CacheKey:
        return (store.tracking_uri, pair[0], pair[1], query.max_points, query.step_min, query.step_max)

    def keep(pair: tuple[str, str], series: dict[str, Any]) -> None:
        found[pair] = series
        fingerprint = fingerprints.get(pair)
        if fingerprint is not None:
            CACHE.put(cache_key(pair), fingerprint, series)

    missing = []
    for pair in pairs:
        fingerprint = fingerprints.get(pair)
        cached = CACHE.get(cache_key(pair), fingerprint) if fingerprint is not None else None
        if cached is not None:
            found[pair] = cached
        else:
            missing.append(pair)

    if backend is not None:
        # A series of a few times its budget at most is read whole with the others like it, a few
        # queries for all of them (the workspace's 100 runs x 5 keys of 1,000 steps) and cut here;
        # a longer one is cut by the database, alone.
        short = [p for p in missing if _short(fingerprints.get(p), query)]
        for pair, rows in _short_rows_from_sql(backend, short, query).items():
            keep(pair, _series(pair[0], pair[1], rows, query.max_points))
        missing = [p for p in missing if p not in found]

    long_rows = {p: _long(fingerprints.get(p), query) for p in missing}
    sample = backend is not None and sum(long_rows.values()) > SAMPLE_TOTAL_ROWS
    sampled_series = sum(1 for rows in long_rows.values() if rows)
    sample_points = min(query.max_points, max(SAMPLE_MIN_POINTS, SAMPLE_SEEKS // max(1, sampled_series)))

    def one(pair: tuple[str, str]) -> None:
        run_id, key = pair
        if backend is not None and backend.engine.dialect.name in SQL_BUCKETS:
            if sample and long_rows[pair] and backend.engine.dialect.name in SQL_SAMPLES:
                sampled = _sampled_in_sql(backend, run_id, key, sample_points)
                if sampled is not None:
                    keep(pair, sampled)
                    REFINER.submit(backend, cache_key(pair), fingerprints[pair], query)
                    return
            series = _downsampled_in_sql(backend, run_id, key, query)
            if series is not None:
                keep(pair, series)
                return
        if backend is not None:
            rows = _rows_from_sql(backend, run_id, key, query)
        else:
            rows = _rows_from_client(store, run_id, key, query)
        keep(pair, _series(run_id, key, rows, query.max_points))

    if len(missing) < 2:
        for pair in missing:
            one(pair)
    else:
        with ThreadPoolExecutor(max_workers=min(READERS, len(missing))) as pool:
            list(pool.map(one, missing))
    return [found[pair] for pair in pairs]


# -- downsampling in SQL -----------------------------------------------------------------------------
# A long series is cut into equal step ranges in the database, which returns each range's lowest
# and highest point: a few hundred rows leave the database instead of 100,000. The first and last
# points are read apart (index seeks), so the series keeps its first, last, lowest and highest
# point as minmax_downsample guarantees. PostgreSQL finds a range's extreme point with min/max over
# ARRAY[value, step, timestamp], one GROUP BY scan. sqlite returns the other columns of the row a
# lone min() or max() picked; a GROUP BY there sorts every row (no faster than reading them into
# Python), so each range is its own index range scan, per range a subquery for the lowest row and
# one for the highest (0.23 s per 100,000 rows against 0.65 s read into Python, on 2 busy cores).
# MySQL: see _MYSQL_BUCKETS. Other databases read every row.

BIG = float(np.finfo(np.float64).max)  # MLflow stores +-inf as +-max
_FINITE = f"(is_nan = {{false}} AND value < {BIG!r} AND value > {-BIG!r})"
_SQLITE_RANGE = (
    "run_uuid = :run AND key = :key AND step BETWEEN :lo + i * :width AND :lo + i * :width + :width - 1 "
    "AND step <= :hi"  # the last range may reach past the window
)
_SQLITE_EXTREME = (
    "(SELECT r FROM (SELECT rowid AS r, {agg}(CASE WHEN {finite} THEN value END) "
    f"FROM metrics INDEXED BY {METRICS_INDEX} WHERE {_SQLITE_RANGE}))"
)
_SQLITE_BUCKETS = (
    "WITH RECURSIVE ranges(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM ranges WHERE i + 1 < :buckets) "
    "SELECT {low}, {high} FROM ranges"
)
_POSTGRES_BUCKETS = (
    "SELECT min(ARRAY[value, step::float8, timestamp::float8]), max(ARRAY[value, step::float8, timestamp::float8]) "
    "FROM metrics WHERE run_uuid = :run AND key = :key AND step BETWEEN :lo AND :hi AND {finite} "
    "GROUP BY (step - :lo) / :width"
)
# MySQL and MariaDB have neither arrays nor sqlite's bare columns: each range's lowest and highest
# row are ranked by window functions (MySQL 8, MariaDB 10.2), a tie going to the earlier step.
# PyMySQL decodes rows in pure Python, so the few hundred rows this returns instead of 100,000
# are what matters there: 0.6 s against 2.2 s for a 100,000-step series on 2 busy cores.
_MYSQL_BUCKETS = (
    "SELECT step, value, timestamp FROM (SELECT step, value, timestamp, "
    "ROW_NUMBER() OVER (PARTITION BY (step - :lo) DIV :width ORDER BY value, step) AS lowest, "
    "ROW_NUMBER() OVER (PARTITION BY (step - :lo) DIV :width ORDER BY value DESC, step) AS highest "
    "FROM metrics WHERE run_uuid = :run AND `key` = :key AND step BETWEEN :lo AND :hi AND {finite}) AS ranked "
    "WHERE lowest = 1 OR highest = 1"
)
SQL_BUCKETS = frozenset({"sqlite", "postgresql", "mysql"})
# where a first open of many long series is sampled by index seeks (_sampled_in_sql)
SQL_SAMPLES = frozenset({"sqlite", "postgresql"})


def _downsampled_in_sql(backend: Any, run_id: str, key: str, query: HistoryQuery) -> dict[str, Any] | None:
    """The series cut to ``query.max_points`` by the database; None where the plain read is as
    cheap and returns every row (no more finite rows than the budget)."""
    import sqlalchemy as sa

    dialect = backend.engine.dialect.name
    window = ""
    bounds: dict[str, Any] = {"run": run_id, "key": key}
    if query.step_min is not None:
        window += " AND step >= :step_min"
        bounds["step_min"] = query.step_min
    if query.step_max is not None:
        window += " AND step <= :step_max"
        bounds["step_max"] = query.step_max
    finite = _FINITE.format(false="0" if dialect == "sqlite" else "false")
    where = f"FROM metrics{' INDEXED BY ' + METRICS_INDEX if dialect == 'sqlite' else ''} "
    key_column = backend.engine.dialect.identifier_preparer.quote("key")  # a reserved word in MySQL
    where += f"WHERE run_uuid = :run AND {key_column} = :key{window}"
    edge = f"SELECT step, value, timestamp {where} AND {finite} ORDER BY step {{order}} LIMIT 1"
    counts = f"SELECT SUM(CASE WHEN {finite} THEN 1 ELSE 0 END), COUNT(*) {where}"
    with backend.engine.connect() as connection:
        if dialect == "postgresql":
            # Compiling the aggregate (JIT) costs PostgreSQL more than running it: 0.35 s against
            # 0.13 s for 100,000 rows. SET LOCAL ends with this transaction.
            connection.execute(sa.text("SET LOCAL jit = off"))
        finite_rows, rows = connection.execute(sa.text(counts), bounds).one()
        total = int(finite_rows or 0)
        if total <= query.max_points:
            return None
        first = connection.execute(sa.text(edge.format(order="ASC")), bounds).one()
        last = connection.execute(sa.text(edge.format(order="DESC")), bounds).one()
        lo, hi = int(first[0]), int(last[0])
        buckets = (query.max_points - 2) // 2
        width = max(1, -(-(hi - lo + 1) // buckets))  # ceil: at most `buckets` ranges over [lo, hi]
        args = {**bounds, "lo": lo, "hi": hi, "width": width, "buckets": -(-(hi - lo + 1) // width)}
        kept: list[tuple[Any, ...]] = [tuple(first), tuple(last)]
        if dialect == "sqlite":
            low = _SQLITE_EXTREME.format(agg="MIN", finite=finite)
            high = _SQLITE_EXTREME.format(agg="MAX", finite=finite)
            found = connection.execute(sa.text(_SQLITE_BUCKETS.format(low=low, high=high)), args).all()
            # a range without a finite row still names a row (the bare column beside a NULL min)
            rowids = sorted({r for pair in found for r in pair if r is not None})
            for start in range(0, len(rowids), 500):
                chunk = ", ".join(str(int(r)) for r in rowids[start : start + 500])
                kept += connection.execute(
                    sa.text(f"SELECT step, value, timestamp FROM metrics WHERE rowid IN ({chunk}) AND {finite}")
                )
        elif dialect == "mysql":
            kept += connection.execute(sa.text(_MYSQL_BUCKETS.format(finite=finite)), args)
        else:
            for pair in connection.execute(sa.text(_POSTGRES_BUCKETS.format(finite=finite)), args):
                kept += [(p[1], p[0], p[2]) for p in pair]
    points = sorted({(int(step), int(stamp)): float(value) for step, value, stamp in kept}.items())
    return {
        "run_id": run_id,
        "key": key,
        "steps": [step for (step, _), _ in points],
        "values": [value for _, value in points],
        "timestamps": [stamp for (_, stamp), _ in points],
        "total": total,
        "nonfinite": int(rows) - total,
        "downsampled": len(points) < total,
    }


def _long(fingerprint: tuple[Any, ...] | None, query: HistoryQuery) -> int:
    """The rows of a whole series (no step window) guessed from its last step, where it may be
    sampled (so many rows that its exact cut is slow); else 0."""
    if fingerprint is None or query.step_min is not None or query.step_max is not None:
        return 0
    rows = int(fingerprint[0]) + 1
    return rows if rows > max(SAMPLE_ROWS, SAMPLE_FACTOR * query.max_points) else 0


# sqlite: each range's first row is found in the index alone (it holds the rowid); the finite
# test would read the table at every seek, so a range starting at a NaN or inf point is dropped
# in Python instead (half the time of testing it in SQL: 8 against 19 ms for 400 seeks).
_SQLITE_SEEKS = (
    "WITH RECURSIVE ranges(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM ranges WHERE i + 1 < :buckets) "
    "SELECT m.step, m.value, m.timestamp, m.is_nan FROM ranges JOIN metrics AS m ON m.rowid = "
    "(SELECT rowid FROM metrics INDEXED BY {index} WHERE run_uuid = :run AND key = :key "
    "AND step >= :lo + i * :width AND step < :hi ORDER BY step LIMIT 1)"
)
_POSTGRES_SEEKS = (
    "SELECT p.step, p.value, p.timestamp FROM generate_series(1, :buckets - 1) AS ranges(i) "
    "CROSS JOIN LATERAL (SELECT step, value, timestamp FROM metrics WHERE run_uuid = :run AND key = :key "
    "AND step >= :lo + ranges.i * :width AND step < :hi AND {finite} ORDER BY step LIMIT 1) AS p"
)


def _sampled_in_sql(backend: Any, run_id: str, key: str, points: int) -> dict[str, Any] | None:
    """The whole series sampled by index seeks: its first and last finite points, and the first
    finite point at or after the start of each of ``points - 2`` equal step ranges between
    them. None where the series has no finite point. ``total`` is the step span (no row is
    counted: that would read them all), ``nonfinite`` 0; the exact cut replaces both."""
    import sqlalchemy as sa

    dialect = backend.engine.dialect.name
    finite = _FINITE.format(false="0" if dialect == "sqlite" else "false")
    hint = f" INDEXED BY {METRICS_INDEX}" if dialect == "sqlite" else ""
    bounds: dict[str, Any] = {"run": run_id, "key": key}
    edge = (
        f"SELECT step, value, timestamp FROM metrics{hint} WHERE run_uuid = :run AND key = :key AND {finite} "
        "ORDER BY step {order} LIMIT 1"
    )
    with backend.engine.connect() as connection:
        first = connection.execute(sa.text(edge.format(order="ASC")), bounds).one_or_none()
        last = connection.execute(sa.text(edge.format(order="DESC")), bounds).one_or_none()
        if first is None or last is None:
            return None
        lo, hi = int(first[0]), int(last[0])
        buckets = max(2, points - 2)
        width = max(1, -(-(hi - lo + 1) // buckets))
        args = {**bounds, "lo": lo, "hi": hi, "width": width, "buckets": -(-(hi - lo + 1) // width)}
        kept: list[tuple[Any, ...]] = [tuple(first), tuple(last)]
        if dialect == "sqlite":
            for step, value, stamp, is_nan in connection.execute(
                sa.text(_SQLITE_SEEKS.format(index=METRICS_INDEX)), args
            ):
                if not is_nan and -BIG < value < BIG:
                    kept.append((step, value, stamp))
        else:
            connection.execute(sa.text("SET LOCAL jit = off"))
            kept += connection.execute(sa.text(_POSTGRES_SEEKS.format(finite=finite)), args)
    # one point per step: a step logged twice keeps its first row found
    by_step = sorted({int(step): (float(value), int(stamp)) for step, value, stamp in reversed(kept)}.items())
    return {
        "run_id": run_id,
        "key": key,
        "steps": [step for step, _ in by_step],
        "values": [value for _, (value, _) in by_step],
        "timestamps": [stamp for _, (_, stamp) in by_step],
        "total": hi - lo + 1,
        "nonfinite": 0,
        "downsampled": True,
        "sampled": True,
    }


class Refiner:
    """Cuts sampled series exactly on one background thread and puts them in the cache.

    One thread: the refinement is the full read the sampling saved, and must not crowd out the
    requests on a small machine. A daemon thread, so a queue of refinements never holds up the
    UI's exit. A series already queued (the same cache key) is not queued twice.
    """

    def __init__(self) -> None:
        self._work: queue.Queue[tuple[Any, CacheKey, Any, HistoryQuery]] = queue.Queue()
        self._queued: set[CacheKey] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, backend: Any, key: CacheKey, fingerprint: Any, query: HistoryQuery) -> None:
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mltrack-ui-refine", daemon=True)
                self._thread.start()
        self._work.put((backend, key, fingerprint, query))

    def _run(self) -> None:
        while True:
            backend, key, fingerprint, query = self._work.get()
            try:
                run_id, metric = key[1], key[2]
                series = _downsampled_in_sql(backend, run_id, metric, query)
                if series is None:
                    rows = _rows_from_sql(backend, run_id, metric, query)
                    series = _series(run_id, metric, rows, query.max_points)
                CACHE.put(key, fingerprint, series)
            except Exception:  # a store gone or busy: the sampled series stays until the next open
                logger.debug("refining %s failed", key, exc_info=True)
            finally:
                with self._lock:
                    self._queued.discard(key)
                self._work.task_done()

    def wait(self) -> None:
        """Until every queued refinement is done (for tests and benchmarks)."""
        self._work.join()


REFINER = Refiner()


def _short(fingerprint: tuple[Any, ...] | None, query: HistoryQuery) -> bool:
    """Whether a series likely has few rows: steps from 0 to its last (latest_metrics) step fit
    ``BATCH_FACTOR`` times the budget, or it has no latest_metrics row (nothing logged). Only a
    guess (steps may be negative or repeat): a wrong guess costs time, never points, as a short
    series is downsampled like any other."""
    if fingerprint is None:
        return True
    last_step = int(fingerprint[0])
    first = 0 if query.step_min is None else max(0, query.step_min)
    last = last_step if query.step_max is None else min(last_step, query.step_max)
    return last - first + 1 <= BATCH_FACTOR * query.max_points


def _short_rows_from_sql(
    backend: Any, pairs: list[tuple[str, str]], query: HistoryQuery
) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """The rows of many short series, one query per key (MLflow's (run, key, step) index)."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    runs_by_key: dict[str, list[str]] = {}
    for run_id, key in pairs:
        runs_by_key.setdefault(key, []).append(run_id)
    rows: dict[tuple[str, str], list[tuple[Any, ...]]] = {pair: [] for pair in pairs}
    for key, run_ids in runs_by_key.items():
        stmt: Any = sa.select(
            SqlMetric.run_uuid, SqlMetric.step, SqlMetric.value, SqlMetric.timestamp, SqlMetric.is_nan
        ).where(SqlMetric.run_uuid.in_(run_ids), SqlMetric.key == key)
        stmt = _in_window(stmt, query).order_by(SqlMetric.run_uuid, SqlMetric.step)
        for row in _fetch_raw(backend, stmt, by_run_key_step=True):
            rows[(row[0], key)].append(row[1:])
    return rows


def _series(run_id: str, key: str, rows: list[tuple[Any, ...]], max_points: int) -> dict[str, Any]:
    if rows:
        table = np.asarray(rows, dtype=np.float64)
        steps, values, stamps = table[:, 0], table[:, 1], table[:, 2]
        if table.shape[1] > 3:  # MLflow keeps NaN as value 0 with is_nan set
            values[table[:, 3] != 0] = np.nan
    else:
        steps = values = stamps = np.empty(0)
    finite = np.isfinite(values) & (np.abs(values) < np.finfo(np.float64).max)  # MLflow stores inf as max
    skipped = int(len(values) - finite.sum())
    steps, values, stamps = steps[finite], values[finite], stamps[finite]
    total = len(steps)
    # Downsample positions rather than steps, so the kept points' timestamps come along.
    kept, values = minmax_downsample(np.arange(total, dtype=np.float64), values, max_points)
    index = kept.astype(np.int64)
    return {
        "run_id": run_id,
        "key": key,
        "steps": steps[index].astype(np.int64).tolist(),
        "values": values.tolist(),
        "timestamps": stamps[index].astype(np.int64).tolist(),
        "total": total,
        "nonfinite": skipped,
        "downsampled": len(index) < total,
    }


def _fingerprints(backend: Any, query: HistoryQuery) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(run, key) -> its latest_metrics row: MLflow moves it whenever a later step is logged."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric as Latest

    stmt: Any = sa.select(
        Latest.run_uuid, Latest.key, Latest.step, Latest.timestamp, Latest.value, Latest.is_nan
    ).where(Latest.run_uuid.in_(query.run_ids), Latest.key.in_(query.keys))
    with backend.ManagedSessionMaker() as session:
        return {(row[0], row[1]): tuple(row[2:]) for row in session.execute(stmt)}


def _in_window(stmt: Any, query: HistoryQuery) -> Any:
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    if query.step_min is not None:
        stmt = stmt.where(SqlMetric.step >= query.step_min)
    if query.step_max is not None:
        stmt = stmt.where(SqlMetric.step <= query.step_max)
    return stmt


def _fetch_raw(backend: Any, stmt: Any, by_run_key_step: bool = False) -> list[tuple[Any, ...]]:
    """Plain DB-API tuples: SQLAlchemy's per-row processing costs more than the query itself.

    ``by_run_key_step``: read through MLflow's (run, key, step) index. Given ``run_uuid IN (...)``
    sqlite's planner, which has no statistics, picks the primary key's (key, ...) index instead
    and reads that key's rows of every run in the store (0.1 s a query at 20,000 runs); SQLAlchemy
    renders no table hints for sqlite, so the hint is written into the statement here.
    """
    dialect = backend.engine.dialect
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = tuple(params[name] for name in compiled.positiontup or []) if compiled.positional else params
    sql = str(compiled)
    if by_run_key_step and dialect.name == "sqlite":
        sql = sql.replace("FROM metrics", f"FROM metrics INDEXED BY {METRICS_INDEX}", 1)
    connection = backend.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    finally:
        connection.close()


def _rows_from_sql(backend: Any, run_id: str, key: str, query: HistoryQuery) -> list[tuple[Any, ...]]:
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    stmt: Any = sa.select(SqlMetric.step, SqlMetric.value, SqlMetric.timestamp, SqlMetric.is_nan).where(
        SqlMetric.run_uuid == run_id, SqlMetric.key == key
    )
    # Step order alone is what the index gives; adding timestamp makes sqlite sort 100k rows.
    return _fetch_raw(backend, _in_window(stmt, query).order_by(SqlMetric.step))


def _rows_from_client(store: MlflowStore, run_id: str, key: str, query: HistoryQuery) -> list[tuple[Any, ...]]:
    history = store.client.get_metric_history(run_id, key)
    rows = [(m.step, m.value, m.timestamp) for m in history]
    rows.sort(key=lambda row: row[0])
    if query.step_min is not None or query.step_max is not None:
        low = -np.inf if query.step_min is None else query.step_min
        high = np.inf if query.step_max is None else query.step_max
        rows = [row for row in rows if low <= row[0] <= high]
    return rows
