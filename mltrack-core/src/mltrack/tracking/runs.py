"""Runs: start, end, the active-run stack, and exit handling.

The active run is tracked per context (a ContextVar, so concurrent asyncio tasks and
threads each see their own stack). A thread that started no run of its own logs to
the most recently started run of the process, so data-loader or callback threads
work without plumbing.
"""

from __future__ import annotations

import atexit
import getpass
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mltrack import process_state
from mltrack.errors import (
    ConfigError,
    InvalidInputError,
    LoggingFailedError,
    MLTrackError,
    NoActiveRunError,
    RecordsRefusedWarning,
    RunAlreadyActiveError,
    RunNotFoundError,
)
from mltrack.plugins.manager import extra_sinks, get_plugin_manager
from mltrack.storage.spool import (
    REFUSED_TAG,
    SPOOL_ID_TAG,
    RunSpool,
    quarantine_root,
    read_spool_header,
    spool_root,
    try_lock,
)
from mltrack.storage.store import MlflowSink, MlflowStore, get_store
from mltrack.storage.validation import check_key, check_run_start, tag_to_string
from mltrack.storage.writer import TAG, BackgroundWriter, QueueItem
from mltrack.tracking import experiments
from mltrack.tracking.experiments import resolve_experiment_id, store_errors
from mltrack.tracking.offline import (
    ARTIFACTS,
    OfflineStore,
    find_synced_run,
    is_offline_run_id,
    offline_error,
    offline_run_id,
    spool_id_of,
)
from mltrack.tracking.replay import replay_folder, replay_orphans
from mltrack.tracking.writer_process import WriterProcessClient

if TYPE_CHECKING:
    from mlflow.entities import Run

# mlflow, multiprocessing's util and the settings (pydantic) are imported inside functions, not by `import mltrack`
# (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.runs")

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


class ActiveRun:
    """A run started by this process. Also the context manager ``start_run`` returns."""

    def __init__(
        self,
        run_id: str,
        experiment_id: str,
        run_name: str | None,
        parent_run_id: str | None,
        store: MlflowStore,
        start_time: int,
        params: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.store = store
        self.start_time = start_time
        self.status = "RUNNING"
        self.owner_pid = os.getpid()  # a forked child logs to it but does not end it
        self.params: dict[str, str] = dict(params or {})
        self.spool: RunSpool | None = None
        # An offline run's spool header: what `mltrack sync` needs to create it in the store.
        self.offline_header: dict[str, Any] | None = None

    @property
    def offline(self) -> bool:
        """Whether the run is recorded only in the local spool (``mode = "offline"``)."""
        return self.offline_header is not None

    @property
    def info(self) -> ActiveRun:
        """MLflow-style access: ``run.info.run_id`` works as on an MLflow ``ActiveRun``."""
        return self

    @property
    def tracking_uri(self) -> str:
        return self.store.tracking_uri

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} name={self.run_name!r} experiment={self.experiment_id} {self.status}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        status = status_for_exception(exc)
        try:
            end_run(status, run=self, error=exc)
        except MLTrackError:
            if exc is None:
                raise
            logger.exception("mltrack: ending run %s after an error also failed", self.run_id)


_stack: ContextVar[tuple[ActiveRun, ...]] = ContextVar("mltrack_run_stack", default=())
_process_runs: list[ActiveRun] = []
_attached: dict[str, ActiveRun] = {}  # runs logged to by id that this process did not start
_process_lock = threading.RLock()
_writer: BackgroundWriter | WriterProcessClient | None = None
_writer_lock = threading.Lock()
_terminated_by_signal = False
_uncaught_exception = False
_handlers_installed = False


def status_for_exception(exc: BaseException | None) -> str:
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and _terminated_by_signal):
        return "KILLED"
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return "FINISHED"
    return "FAILED"


def get_writer() -> BackgroundWriter | WriterProcessClient:
    """The process's writer, started on first use: a thread with the plugin sinks, or
    (``writer = "process"``) the client of a writer process that reads the spools."""
    global _writer
    writer = _writer
    if writer is not None:  # the hot path: no lock once the writer exists
        return writer
    with _writer_lock:
        if _writer is None:
            from mltrack.config.settings import get_settings

            settings = get_settings()
            if settings.writer == "process" and settings.spool:
                _writer = _writer_process_client(settings)
            if _writer is None:
                _writer = BackgroundWriter(
                    flush_interval_s=settings.flush_interval_ms / 1000,
                    retries=settings.write_retries,
                    backoff_s=settings.retry_backoff_s,
                    extra_sinks=extra_sinks(),
                    quarantine_dir=quarantine_root(settings.data_dir) if settings.spool else None,
                )
        return _writer


def _writer_process_client(settings: Any) -> WriterProcessClient | None:
    """The client of a writer process, or None where none can start (no UNIX sockets, an
    embedded interpreter whose ``sys.executable`` is not Python): logging must not fail the
    job, so the thread writer takes over, with one warning."""

    try:
        return WriterProcessClient(settings)
    except (OSError, LoggingFailedError) as exc:
        reason = exc.message if isinstance(exc, LoggingFailedError) else f"{type(exc).__name__}: {exc}"
        logger.warning(
            "%s; this process writes to the store from a thread instead "
            '(set writer = "thread" (MLTRACK_WRITER=thread) to silence this)',
            reason,
        )
        return None


def _discard(item: QueueItem) -> None:
    pass


def writer_put(run: ActiveRun) -> Callable[[QueueItem], None]:
    """Where a logging call queues ``run``'s params and tags for the store (after spooling
    them): nowhere for an offline run, whose spool is all there is until ``mltrack sync``;
    so an offline process starts no writer and never tries to reach the store."""
    return _discard if run.offline else get_writer().put


def active_run() -> ActiveRun | None:
    """The run that logging calls in this context go to, or None."""
    stack = _stack.get()
    if stack:
        return stack[-1]
    with _process_lock:
        return _process_runs[-1] if _process_runs else None


def current_run(run_id: str | None = None) -> ActiveRun:
    """The active run (or the one with ``run_id``); raises ``NoActiveRunError``."""
    if run_id is None:
        stack = _stack.get()
        if stack:
            return stack[-1]
        if _process_runs:
            return _process_runs[-1]
        raise NoActiveRunError("no active run: start one before logging")
    for run in _process_runs:
        if run.run_id == run_id:
            return run
    attached = _attached.get(run_id)
    if attached is None:
        attached = _attached[run_id] = _attach(run_id)
    return attached


def _attach(run_id: str) -> ActiveRun:
    """Route logging for a run this process did not start (e.g. another process's)."""
    store = get_store()
    existing = _fetch_run(store, run_id)
    run = ActiveRun(
        existing.info.run_id,  # not `run_id`: an offline run's id finds the run it was synced to
        existing.info.experiment_id,
        existing.info.run_name,
        None,
        store,
        existing.info.start_time,
        dict(existing.data.params),
    )
    run.spool = _new_spool(run)
    get_writer().open_run(run_id, MlflowSink(store), run.experiment_id, run.run_name, run.spool)
    _install_exit_handlers()  # drain and release its spool at exit, without ending the run
    return run


def _new_spool(run: ActiveRun) -> RunSpool | None:
    from mltrack.config.settings import get_settings

    settings = get_settings()
    if not settings.spool:
        return None
    if run.offline_header is not None:  # a forked child's own spool of an offline run
        spool_id = spool_id_of(run.run_id)
        header = {"offline": {**run.offline_header, "main": False}}
        return RunSpool(spool_root(settings.data_dir), run.run_id, run.tracking_uri, spool_id=spool_id, header=header)
    return RunSpool(spool_root(settings.data_dir), run.run_id, run.store.tracking_uri)


def _starting_spool(store: MlflowStore, experiment_id: str) -> RunSpool | None:
    """A spool made before the store's ``create_run``: if this process dies before it
    can end the run, replay finds the run by the spool's id and marks it KILLED."""
    from mltrack.config.settings import get_settings

    settings = get_settings()
    if not settings.spool:
        return None
    return RunSpool(
        spool_root(settings.data_dir),
        None,
        store.tracking_uri,
        spool_id=uuid.uuid4().hex,
        experiment_id=experiment_id,
    )


_replayed_stores: set[str] = set()


def replay_orphans_once(store: MlflowStore) -> None:
    """Send what dead processes left in their spools for this store (once per process)."""
    from mltrack.config.settings import get_settings

    if store.tracking_uri in _replayed_stores:
        return
    _replayed_stores.add(store.tracking_uri)
    settings = get_settings()
    if not settings.spool:
        return

    try:
        reports = replay_orphans(
            spool_root(settings.data_dir),
            tracking_uri=store.tracking_uri,
            detected_by=f"replay by process {os.getpid()} starting a run",
        )
    except Exception as exc:  # replay problems never stop a new run; `mltrack sync` reports them
        logger.warning("mltrack: replaying orphaned spools failed (%s); run `mltrack sync` for details", exc)
        return
    for report in reports:
        if report.quarantined:
            logger.warning("mltrack: a damaged spool of run %s was moved to %s", report.run_id, report.quarantined)
            continue
        if report.ok:
            logger.warning(
                "mltrack: replayed %d metric point(s), %d param(s), %d tag(s) of run %s left by a process that died%s",
                report.metrics,
                report.params,
                report.tags,
                report.run_id,
                f"; marked {report.status_set}" if report.status_set else "",
            )
        else:
            logger.warning("mltrack: could not replay spool %s: %s", report.path, report.error)


def _fetch_run(store: MlflowStore, run_id: str) -> Run:
    if is_offline_run_id(run_id):
        return _synced_run(store, run_id)
    from mlflow.exceptions import MlflowException

    try:
        with store_errors(store):
            return store.client.get_run(run_id)
    except MLTrackError as exc:
        cause = exc.__cause__
        if isinstance(cause, MlflowException) and getattr(cause, "error_code", "") in {
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
        }:
            raise RunNotFoundError(
                f"run {run_id!r} does not exist in {store.tracking_uri}",
                hint="list runs with `mltrack runs list`",
            ) from None
        raise


def _synced_run(store: MlflowStore, run_id: str) -> Run:
    """The run that offline run ``run_id`` was synced to (the offline error until then)."""
    from mltrack.config.settings import get_settings

    settings = get_settings()
    folder = spool_root(settings.data_dir) / run_id
    spools = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if spools or settings.mode == "offline":
        uri = read_spool_header(spools[0]).get("tracking_uri") if spools else None
        raise offline_error(run_id, uri or store.tracking_uri, "reading the run")
    with store_errors(store):
        found = find_synced_run(store.client, spool_id_of(run_id), deleted=True)
    if found is None:
        raise RunNotFoundError(
            f"run {run_id} is an offline run that is neither in the local spool under {settings.data_dir} "
            f"nor synced to {store.tracking_uri}",
            hint="run `mltrack sync` on the machine that recorded it, with the same MLTRACK_DATA_DIR",
        )
    return found


def start_run(
    run_name: str | None = None,
    *,
    experiment: str | None = None,
    experiment_id: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    tracking_uri: str | None = None,
    mode: str | None = None,
) -> ActiveRun:
    """Start a run (or resume one by ``run_id``) and make it the active run.

    Use as a context manager: the run ends FINISHED, or FAILED if the block raises
    (KILLED on Ctrl-C or SIGTERM). ``nested=True`` starts a child of the active run.
    ``mode="offline"`` (default: the ``mode`` setting) records the run only in the local
    spool, without contacting the store; ``mltrack sync`` creates it there later.
    """

    parent = _stack.get()[-1] if _stack.get() else None
    if parent is not None and not nested and run_id is None:
        raise RunAlreadyActiveError(
            f"run {parent.run_id} is already active",
            hint="pass nested=True to start a child run, or call mltrack.end_run() first",
        )
    user_tags = check_run_start(tags, run_name, description)
    if _offline_mode(mode, parent if nested else None, parent_run_id):
        if run_id is not None:
            raise MLTrackError(
                f"cannot resume run {run_id} offline: resuming needs the run from the tracking store",
                hint="start a new run offline, or resume this one with mode='online'",
            )
        run = _start_offline(
            run_name,
            experiment,
            experiment_id,
            parent if nested else None,
            parent_run_id,
            {**_base_tags(parent_run_id or (parent.run_id if parent and nested else None), description), **user_tags},
            tracking_uri,
        )
        return _activate(run, _context_tags(run), user_tags)
    store = get_store(tracking_uri)
    writer = get_writer()
    replay_orphans_once(store)

    spool: RunSpool | None = None
    if run_id is not None:
        existing = _fetch_run(store, run_id)
        run_id = existing.info.run_id  # an offline run's id finds the run it was synced to
        run = ActiveRun(
            run_id,
            existing.info.experiment_id,
            existing.info.run_name,
            existing.data.tags.get("mlflow.parentRunId"),
            store,
            existing.info.start_time,
            dict(existing.data.params),
        )
        spool = _new_spool(run)  # before the status changes, so a kill from here on is seen
        try:
            with store_errors(store):
                store.client.update_run(run_id, status="RUNNING")
        except BaseException:
            if spool is not None:
                spool.close(delete=True)
            raise
        context: dict[str, str] = {}
    else:
        if nested and parent is not None and experiment is None and experiment_id is None:
            exp_id = parent.experiment_id  # a child belongs with its parent
        else:
            exp_id = resolve_experiment_id(store, experiment, experiment_id)
        parent_id = parent_run_id or (parent.run_id if parent is not None and nested else None)
        base_tags = _base_tags(parent_id, description)
        start = int(time.time() * 1000)
        spool = _starting_spool(store, exp_id)
        if spool is not None:
            base_tags[SPOOL_ID_TAG] = spool.spool_id or ""
        try:
            with store_errors(store):
                created = store.client.create_run(
                    exp_id, start_time=start, tags={**base_tags, **user_tags}, run_name=run_name
                )
        except BaseException:
            if spool is not None:
                spool.close(delete=True)  # no run was created
            raise
        if spool is not None:
            try:
                spool.bind(created.info.run_id)
            except BaseException:
                # The run exists but cannot be spooled (a full disk): never leave it RUNNING.
                # The unbound spool is kept, so replay can still settle it by its spool id.
                spool.close(delete=False)
                try:
                    store.client.set_terminated(created.info.run_id, "FAILED")
                except Exception:
                    pass
                raise
        run = ActiveRun(created.info.run_id, exp_id, created.info.run_name, parent_id, store, start)
        run.spool = spool
        context = _context_tags(run)

    run.spool = spool
    writer.open_run(run.run_id, MlflowSink(store), run.experiment_id, run.run_name, run.spool)
    return _activate(run, context, user_tags)


def _activate(run: ActiveRun, context: dict[str, str], user_tags: dict[str, str]) -> ActiveRun:
    """Set the context tags a started run's own tags leave, make it the active run, tell the plugins."""
    put = writer_put(run)
    for key, value in context.items():
        if key not in user_tags:
            if run.spool is not None:
                run.spool.append_record({"t": [key, value]})
            put((TAG, run.run_id, key, value))
    _stack.set((*_stack.get(), run))
    with _process_lock:
        _process_runs.append(run)
    _install_exit_handlers()

    for _ in get_plugin_manager().call_each("on_run_start", run=run):
        pass
    return run


def _base_tags(parent_id: str | None, description: str | None) -> dict[str, str]:
    tags = {
        "mlflow.user": _user(),
        "mlflow.source.name": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "<interactive>",
        "mlflow.source.type": "LOCAL",
    }
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    if description:
        tags["mlflow.note.content"] = tag_to_string("description", description)
    return tags


def _offline_mode(mode: Any, parent: ActiveRun | None, parent_run_id: str | None) -> bool:
    """Whether a new run is offline: ``mode``, else the setting; a child of an offline run is."""
    from mltrack.config.settings import get_settings

    if mode is not None and mode not in ("online", "offline"):
        raise InvalidInputError("mode", mode, "must be 'online' or 'offline' (or None for the mode setting)")
    offline_parent = (parent is not None and parent.offline) or is_offline_run_id(parent_run_id)
    if offline_parent:
        if mode == "online":
            raise InvalidInputError(
                "mode",
                mode,
                "a child of an offline run is offline too: its parent is not in the tracking store yet",
                hint="leave mode unset for a child of an offline run",
            )
        mode = "offline"
    settings = get_settings()
    if (mode or settings.mode) != "offline":
        return False
    if not settings.spool:
        raise ConfigError(
            "mode 'offline' records runs in the spool, and spool = false",
            hint="set spool = true (MLTRACK_SPOOL=1) to record runs offline",
        )
    return True


def _start_offline(
    run_name: str | None,
    experiment: str | None,
    experiment_id: str | None,
    parent: ActiveRun | None,
    parent_run_id: str | None,
    tags: dict[str, str],
    tracking_uri: str | None,
) -> ActiveRun:
    """A run recorded only in a new spool, which holds what ``create_run`` will need."""
    from mltrack.config.settings import get_settings

    settings = get_settings()
    name: str | None = None
    if experiment_id is not None:
        exp_id: str | None = str(experiment_id)
    elif experiment is not None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise InvalidInputError("experiment", experiment, "must be a non-empty experiment name")
        exp_id, name = None, experiment
    elif parent is not None:  # a child belongs with its parent
        exp_id = parent.experiment_id or None
        name = (parent.offline_header or {}).get("experiment")
    else:
        # the name set_experiment() chose earlier (that call needed the store), else the setting
        name = experiments._default_name or settings.experiment
        exp_id = None if name else experiments.DEFAULT_EXPERIMENT_ID
    parent_id = parent_run_id or (parent.run_id if parent is not None else None)
    spool_id = uuid.uuid4().hex
    run_id = offline_run_id(spool_id)
    start = int(time.time() * 1000)
    uri = tracking_uri or settings.resolved_tracking_uri()
    header: dict[str, Any] = {"experiment": name, "run_name": run_name, "start_time": start, "tags": tags}
    spool = RunSpool(
        spool_root(settings.data_dir),
        run_id,
        uri,
        spool_id=spool_id,
        experiment_id=exp_id,
        header={"offline": {**header, "main": True}},
    )
    run = ActiveRun(run_id, exp_id or "", run_name, parent_id, OfflineStore(uri, spool.path / ARTIFACTS, run_id), start)
    run.offline_header = header
    run.spool = spool
    return run


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _context_tags(run: ActiveRun) -> dict[str, str]:
    from mltrack.config.settings import get_settings

    if not get_settings().context_tags:
        return {}
    merged: dict[str, str] = {}
    for plugin, tags in get_plugin_manager().call_each("run_context_tags", run=run):
        for key, value in (tags or {}).items():
            try:
                merged[check_key("tag", key)] = tag_to_string(key, value)
            except MLTrackError as exc:
                logger.warning("mltrack plugin %r gave an invalid context tag: %s", plugin, exc)
    return merged


def end_run(
    status: str = "FINISHED",
    *,
    run: ActiveRun | None = None,
    error: BaseException | None = None,
    timeout: float | None = None,
) -> None:
    """End the active run (or ``run``): drain its queued data, then mark it ``status``.

    Child runs still active above it are ended first. If the store does not confirm
    all queued data within ``end_run_timeout_s``, the rest and the final status stay in
    the run's spool (sent by ``mltrack sync`` or the next process) and
    ``LoggingFailedError`` says so; the store is then not marked ended yet. In a forked
    worker, ending the parent's run only drains the worker's data.
    """
    if status not in TERMINAL_STATUSES:
        raise InvalidInputError("status", status, f"must be one of {', '.join(TERMINAL_STATUSES)}")
    if run is None:
        run = active_run()
        if run is None:
            return
    if run.status != "RUNNING":
        return
    if run.owner_pid != os.getpid():
        # a forked worker leaving the parent's run: deliver its data, leave the run to its owner
        if not run.offline:  # an offline run's data stays in the worker's spool
            get_writer().flush(timeout if timeout is not None else get_settings_timeout(), run_id=run.run_id)
        _stack.set(tuple(r for r in _stack.get() if r is not run))
        return
    with _process_lock:
        children = [r for r in _process_runs if r.parent_run_id == run.run_id and r.status == "RUNNING"]
    for child in reversed(children):
        end_run(status, run=child, error=error, timeout=timeout)
    from mltrack.config.settings import get_settings

    # Observers run first, while the run still accepts data, so they can log final values.
    for _ in get_plugin_manager().call_each("on_run_end", run=run, status=status, error=error):
        pass
    run.status = status
    if run.offline:
        _end_offline(run, status)
        return
    writer = get_writer()
    failure: MLTrackError | None = None
    try:
        _drain_run(writer, run.run_id, timeout if timeout is not None else get_settings().end_run_timeout_s)
    except MLTrackError as exc:
        failure = exc
    writer.close_run(run.run_id, status)
    if failure is None:
        _report_refused(writer, run)
        _deliver_dead_workers(run)
    end_time = int(time.time() * 1000)
    if failure is None:
        try:
            with store_errors(run.store):
                run.store.client.set_terminated(run.run_id, status, end_time=end_time)
        except MLTrackError as exc:
            failure = exc
    _stack.set(tuple(r for r in _stack.get() if r is not run))
    with _process_lock:
        if run in _process_runs:
            _process_runs.remove(run)
        _attached.pop(run.run_id, None)
    if failure is None:
        writer.forget_run(run.run_id)
        if run.spool is not None:
            run.spool.close(delete=True)
        return
    if run.spool is not None:
        # The store could not take everything: the spool keeps it (and the status),
        # released so `mltrack sync` or the next process can deliver it.
        run.spool.append_record({"end": status, "time": end_time})
        run.spool.close(delete=False)
        raise LoggingFailedError(
            f"run {run.run_id} ended {status}, but the store did not confirm all its data "
            f"({failure.message}); {writer.pending_items(run.run_id)} item(s) and the final status are kept "
            f"in the spool {run.spool.path}",
            hint="they are sent when the store is back: run `mltrack sync` (or start another run)",
        ) from failure
    raise failure


def _end_offline(run: ActiveRun, status: str) -> None:
    """Record the status in the offline run's spool and release it for ``mltrack sync``."""
    try:
        if run.spool is not None and not run.spool.closed:
            try:
                run.spool.append_record({"end": status, "time": int(time.time() * 1000)})
            except OSError as exc:
                raise LoggingFailedError(
                    f"could not record the end of offline run {run.run_id} in its spool {run.spool.path} "
                    f"({exc.strerror or exc}): `mltrack sync` will mark it KILLED",
                    hint="check that the folder is writable and has room",
                ) from None
            finally:
                run.spool.close(delete=False)
    finally:
        _stack.set(tuple(r for r in _stack.get() if r is not run))
        with _process_lock:
            if run in _process_runs:
                _process_runs.remove(run)
    logger.info(
        "mltrack: run %s ended %s offline; `mltrack sync` creates it in %s", run.run_id, status, run.tracking_uri
    )


def _drain_run(writer: BackgroundWriter | WriterProcessClient, run_id: str, timeout: float) -> None:
    """Deliver everything of ``run_id``, waiting through a store outage until the store
    has made no progress for ``timeout`` seconds (a backlog being delivered, or a
    server that comes back, keeps the wait going)."""
    stalled_since = time.monotonic()
    progress = writer.progress
    while True:
        try:
            writer.flush(timeout, run_id=run_id)
            return
        except LoggingFailedError:
            if writer.progress != progress:
                progress = writer.progress
                stalled_since = time.monotonic()
            if time.monotonic() - stalled_since >= timeout:
                raise
            time.sleep(min(0.5, timeout / 10))


def _report_refused(writer: BackgroundWriter | WriterProcessClient, run: ActiveRun) -> None:
    """Say once, at the end of the run, which records the store refused."""
    refused, quarantine = writer.refused(run.run_id)
    if not refused:
        return
    first = "; ".join(f"{r.as_json()['kind']} {r.item.record[0]!r}: {r.reason}" for r in refused[:3])
    where = f", kept in {quarantine.path}" if quarantine is not None else ""
    summary = f"{len(refused)} record(s) refused by the store{where}; first: {first}"
    try:
        run.store.client.set_tag(run.run_id, REFUSED_TAG, summary[:7900])
        with tempfile.TemporaryDirectory(prefix="mltrack-refused-") as folder:
            path = os.path.join(folder, "refused.json")
            with open(path, "w", encoding="ascii") as fh:
                json.dump([r.as_json() for r in refused], fh, ensure_ascii=True, indent=1)
            run.store.client.log_artifact(run.run_id, path, "mltrack")
    except Exception as exc:  # the report is best effort; the records are in the quarantine
        logger.warning("mltrack: could not record the refused records on run %s: %s", run.run_id, exc)
    warnings.warn(f"run {run.run_id}: {summary}", RecordsRefusedWarning, stacklevel=3)


def get_run(run_id: str) -> Run:
    """The MLflow ``Run`` (info, params, metrics, tags) after flushing queued data.

    An offline run's id (``offline-...``) gives the run it was synced to; until then it
    raises ``RunNotFoundError`` saying the run is offline.
    """
    if _writer is not None and not is_offline_run_id(run_id):
        _writer.flush(get_settings_timeout(), run_id=run_id)
    return _fetch_run(get_store(), run_id)


def get_settings_timeout() -> float:
    from mltrack.config.settings import get_settings

    return get_settings().end_run_timeout_s


def flush(timeout: float | None = None) -> None:
    """Block until every logging call made so far is written to the store.

    Raises ``LoggingFailedError`` if something could not be written (it is kept and
    retried) or the wait exceeds ``timeout`` seconds.
    """
    if _writer is not None:
        _writer.flush(timeout if timeout is not None else get_settings_timeout())


# -- exit handling ---------------------------------------------------------------------


def _install_exit_handlers() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_end_all_at_exit)
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _uncaught_exception
        _uncaught_exception = True
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not allowed here (embedded interpreter)
            pass


def _on_sigterm(signum: int, frame: Any) -> None:
    # Unwind like Ctrl-C does: `with start_run()` blocks end their runs KILLED and the
    # atexit handler drains the rest. Doing the drain here could deadlock on a lock the
    # interrupted code holds.
    global _terminated_by_signal
    _terminated_by_signal = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(128 + signal.SIGTERM)


def _deliver_dead_workers(run: ActiveRun) -> None:
    """Send what forked workers of the run left in their spools when they died before
    draining (``with Pool() as pool:`` SIGTERMs its workers on the way out)."""

    if run.spool is None:
        return
    for sibling in sorted(run.spool.path.parent.iterdir()):
        if sibling == run.spool.path or not sibling.is_dir():
            continue
        fd = try_lock(sibling)
        if fd is None:
            continue  # alive, or being delivered by a writer process or `mltrack sync`
        report = replay_folder(sibling, fd, detected_by=f"the run's owner, process {os.getpid()}")
        if not report.ok:
            logger.warning("mltrack: a worker's spool %s is kept for `mltrack sync`: %s", sibling, report.error)


def _end_all_at_exit() -> None:
    if _terminated_by_signal:
        status = "KILLED"
    elif _uncaught_exception:
        status = "FAILED"
    else:
        status = "FINISHED"
    with _process_lock:
        runs = list(reversed(_process_runs))
    pid = os.getpid()
    for run in runs:
        if run.owner_pid != pid:
            continue  # inherited through fork: its owner ends it
        try:
            end_run(status, run=run)
        except Exception as exc:
            print(f"mltrack: could not end run {run.run_id} at exit: {exc}", file=sys.stderr)
    if _writer is not None:
        try:
            _writer.flush(get_settings_timeout())
        except MLTrackError as exc:
            print(f"mltrack: {exc}", file=sys.stderr)
        else:
            borrowed = [r for r in runs if r.owner_pid != pid] + list(_attached.values())
            for run in borrowed:
                if run.spool is not None:
                    run.spool.close(delete=not run.offline)  # an offline run's spool is its data
        _writer.close_sinks()


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker, a multiprocessing pool) inherits the active
    runs but not the writer thread, and shares the parent's spool mappings. Give it a
    writer and spools of its own so its points are neither lost nor written over the
    parent's slots."""
    global _writer, _writer_lock, _process_lock
    _writer = None
    _attached.clear()  # re-attached on next use, with a spool of this process's own
    _writer_lock = threading.Lock()
    _process_lock = threading.RLock()
    # the settings', plugins' and stores' locks were renewed before this (process_state's first stage)
    if not _process_runs:
        return
    try:
        for run in _process_runs:
            run.spool = _new_spool(run)
            if not run.offline:  # an offline run's points stay in the spool: no writer reads it
                get_writer().open_run(run.run_id, MlflowSink(run.store), run.experiment_id, run.run_name, run.spool)
    except Exception as exc:  # never break the child over tracking
        print(f"mltrack: tracking in forked process {os.getpid()} is unavailable: {exc}", file=sys.stderr)
        for run in _process_runs:
            run.spool = None


class _ForkToken:
    """Keeps the multiprocessing after-fork registration alive (it holds a weakref)."""


_fork_token = _ForkToken()
_multiprocessing_hooked = False


def _before_fork() -> None:
    # multiprocessing children leave through os._exit, skipping atexit. Its own
    # finalizers still run, but it clears them in the child first, so register one
    # through its after-fork hook, which runs after that clearing.
    global _multiprocessing_hooked
    if _multiprocessing_hooked or "multiprocessing.util" not in sys.modules or not _process_runs:
        return
    from multiprocessing import util

    def drain_at_child_exit(_token: object) -> None:
        util.Finalize(None, _end_all_at_exit, exitpriority=100)

    util.register_after_fork(_fork_token, drain_at_child_exit)
    _multiprocessing_hooked = True


def _forget_runs() -> None:
    """Drop this process's runs without ending them (tests: their store may be a server a test
    stopped); the writer forgets them too. The writer itself stays (a writer process is
    shared by the whole process tree)."""
    with _process_lock:
        for run in list(_process_runs):
            if _writer is not None:
                _writer.forget_run(run.run_id)
        _process_runs.clear()
        _attached.clear()
    _stack.set(())


# late: the child's writer is built from the settings, plugins and stores renewed before it
process_state.register(
    "runs and writer", reset=_forget_runs, after_fork=_after_fork_in_child, early=False, before_fork=_before_fork
)
