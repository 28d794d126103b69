"""The writer process: store writes outside the training process (``writer = "process"``).

With the thread writer, every point the training loop logs is later read back, batched and
written through MLflow's SQL/REST path by a thread of the training process, sharing its GIL
(~10-15 µs of the training process's CPU a point). Here the training process only validates
and writes the point into its spool (see ``mltrack.storage.spool``); a separate process, one per
process tree, started at the first ``start_run``, reads the spools and does the rest with the
same engine (``BackgroundWriter.cycle``: batching, retries, refused-record isolation, extra
sinks).

Protocol, all through the spool folder and one UNIX datagram socket:

- ``register <folder>`` (datagram): a process (the one that started the writer or a forked
  child) tells the writer about a spool it logs to. The writer takes the folder's
  ``writer.lock`` (so two writers never deliver one spool) and from then on reads its slots
  and parses its log incrementally: params and tags travel as log records, metric points as
  slots. ``{"open": [experiment_id, run_name]}`` and ``{"close": status}`` records start and
  end the run in the extra sinks.
- flush: the logging process claims a bound slot, appends ``{"flush": n, "bound": b}`` and
  sends ``wake``. After the cycle that delivered everything below the bound, the writer
  replaces ``<folder>/ack`` (written to a temporary file, then renamed) with the last flush
  done, its failure message (raised as ``LoggingFailedError`` by the logging process, as the
  thread writer would), the delivery progress counter (for progress-based timeouts), what is
  pending and the refused records (for ``end_run``'s warning and tag).
- a dead writer: a ``wake`` to a socket nobody is bound to fails; the logging process starts a
  new writer and registers its spools again. The new writer takes over from the slot states:
  SENT slots are never resent, params and tags are idempotent to resend.
- a dead logging process: its spool's ``lock`` is released while the folder still exists; the
  writer stops delivering it and lets go of ``writer.lock`` at once (``spool.try_lock`` waits
  for that, so a replayer and the writer never deliver one spool at once). If another process
  still logs to the same run (the run's owner outliving a killed worker, or other ranks), the
  writer replays the spool itself, at once: the run goes on and should not wait for a sync.
  Otherwise the whole run died with it: ``mltrack sync`` or the next process on the same store
  replays it and settles the run, exactly as with the thread writer.

The writer exits once the process that started it is gone and no spool is left to deliver.
Its stderr goes to ``<data_dir>/writer/<pid>.log``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrack.errors import LoggingFailedError
from mltrack.storage.delivery import Item, Quarantine, Refused
from mltrack.storage.records import Metric, Param, Tag
from mltrack.storage.spool import (
    ACK_FILE,
    WRITER_LOCK,
    RunSpool,
    SpoolReader,
    quarantine_root,
    spool_owner_alive,
    try_lock,
)
from mltrack.storage.store import MlflowSink, get_store
from mltrack.storage.writer import FAILED_HINT, PARAM, TAG, BackgroundWriter, QueueItem
from mltrack.tracking.replay import live_rank_exists, replay_folder

# mlflow, the plugin manager and the settings (pydantic) are imported inside functions: the training process's client
# needs none of them (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.writer_process")

ENV_SOCKET = "MLTRACK_WRITER_SOCKET"
ENV_PARENT = "MLTRACK_WRITER_PARENT"
ENV_SETTINGS = "MLTRACK_WRITER_SETTINGS"
MAX_REFUSED_IN_ACK = 100
START_TIMEOUT_S = 30.0
# A writer with nothing to deliver for this long exits (an idle one costs a wake-up every
# flush interval); the next run starts one.
IDLE_EXIT_S = float(os.environ.get("MLTRACK_WRITER_IDLE_EXIT_S", "60"))

# The writer this process tree uses; inherited by forked children, which register with it.
_address: tuple[str, int] | None = None  # (socket path, writer pid)
# What that writer was started with: a client whose settings differ starts its own writer, and a
# run started after the credentials changed (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, AWS_*) goes
# to a new writer, since a writer process reads its environment once; the old one finishes what
# it has.
_address_settings: str | None = None
_address_credentials: str | None = None

_CREDENTIALS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)


def _credentials_key() -> str:
    return json.dumps([os.environ.get(name) for name in _CREDENTIALS])


def _settings_key(settings: Any) -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("MLTRACK_"))
    return str(settings.model_dump_json()) + json.dumps(env) + _credentials_key()


# -- the logging process's side -------------------------------------------------------------


@dataclass
class _Registered:
    spool: RunSpool
    run_id: str
    flushes: int = 0  # the last flush number asked for


@dataclass
class Ack:
    flush: int = 0
    progress: int = 0
    error: str | None = None
    pending: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    quarantine: str | None = None


def read_ack(folder: Path) -> Ack:
    try:
        data = json.loads((folder / ACK_FILE).read_text())
    except (OSError, ValueError):
        return Ack()
    return Ack(
        flush=int(data.get("flush", 0)),
        progress=int(data.get("progress", 0)),
        error=data.get("error"),
        pending=int(data.get("pending", 0)),
        refused=list(data.get("refused", [])),
        quarantine=data.get("quarantine"),
    )


class WriterProcessClient:
    """Stands in for ``BackgroundWriter`` in a process whose writes go to a writer process.

    Nothing per point: the logging calls write the spool; ``put`` is a no-op (params and
    tags are already log records of the spool).
    """

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._spools: dict[str, _Registered] = {}  # folder name -> registration
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._progress_seen = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.degraded: dict[str, str] = {}
        self.extra_sinks: list[Any] = []
        # Runs without a spool (`spool = false` set after this writer started, or a forked child
        # whose spool could not be made) have nothing a writer process could read: a thread
        # writer of this process delivers them, as it would with writer = "thread".
        self._thread: BackgroundWriter | None = None
        self._thread_runs: set[str] = set()
        global _address, _address_settings
        key = _settings_key(settings)
        if _address is None or _address_settings != key or not self._send(b"wake", _address[0]):
            _address = self._start()
            _address_settings = key

    # hot-path compatibility: params, tags and metrics are all in the spool already
    def put(self, item: QueueItem) -> None:
        if self._thread is not None and item[1] in self._thread_runs:
            self._thread.put(item)

    def _spoolless(self) -> BackgroundWriter:
        if self._thread is None:
            from mltrack.plugins.manager import extra_sinks

            settings = self._settings
            self._thread = BackgroundWriter(
                flush_interval_s=settings.flush_interval_ms / 1000,
                retries=settings.write_retries,
                backoff_s=settings.retry_backoff_s,
                extra_sinks=extra_sinks(),
            )
        return self._thread

    @property
    def writer_pid(self) -> int:
        return _address[1] if _address else 0

    @property
    def progress(self) -> int:
        with self._lock:
            folders = [r.spool.path for r in self._spools.values()]
        for folder in folders:
            self._progress_seen = max(self._progress_seen, read_ack(folder).progress)
        return self._progress_seen

    # -- the writer process's lifecycle ----------------------------------------------------

    def _start(self) -> tuple[str, int]:
        global _address_credentials
        _address_credentials = _credentials_key()  # what the new writer's environment holds
        path = os.path.join(tempfile.gettempdir(), f"mltrack-w-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock")
        log_dir = Path(self._settings.data_dir) / "writer"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env[ENV_SOCKET] = path
        env[ENV_PARENT] = str(os.getpid())
        env[ENV_SETTINGS] = self._settings.model_dump_json()
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with open(log_dir / f"{os.getpid()}.log", "ab") as log:
            # A session of its own: Ctrl-C of the job's process group must not kill the
            # writer before it has drained.
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mltrack.tracking.writer_process"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(path):  # bound first thing, before the writer's imports
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise LoggingFailedError(
                    f"the mltrack writer process did not start (see {log_dir / f'{os.getpid()}.log'})",
                    hint='set writer = "thread" (MLTRACK_WRITER=thread) to write from the training process',
                )
            time.sleep(0.002)
        return path, self._proc.pid

    def _send(self, message: bytes, path: str) -> bool:
        try:
            self._sock.sendto(message, path)
            return True
        except OSError as exc:
            # a full socket buffer means the writer is alive, just busy (it polls every spool anyway)
            return exc.errno in (errno.EAGAIN, errno.ENOBUFS)

    def _ensure_writer(self) -> None:
        """Start a new writer (registering this process's spools) if the last one died or
        exited idle."""
        global _address, _address_settings
        if _address is not None and self._send(b"wake", _address[0]):
            return
        if self._proc is not None:
            self._proc.poll()  # reap it
        _address = self._start()
        _address_settings = _settings_key(self._settings)
        with self._lock:
            registered = list(self._spools.values())
        for reg in registered:
            self._send(b"register " + os.fsencode(reg.spool.path), _address[0])

    # -- runs -------------------------------------------------------------------------------

    def open_run(self, run_id: str, primary: Any, experiment_id: str, run_name: str | None, spool: Any = None) -> None:
        if not isinstance(spool, RunSpool):
            self._spoolless().open_run(run_id, primary, experiment_id, run_name, spool)
            self._thread_runs.add(run_id)
            return
        self._follow_credentials()
        spool.read_elsewhere = True
        spool.append_record({"open": [experiment_id, run_name]})
        with self._lock:
            self._spools[spool.path.name] = _Registered(spool, run_id)
        assert _address is not None
        if not self._send(b"register " + os.fsencode(spool.path), _address[0]):
            self._ensure_writer()

    def _follow_credentials(self) -> None:
        global _address
        if _credentials_key() != _address_credentials:
            _address = self._start()

    def close_run(self, run_id: str, status: str) -> None:
        if self._thread is not None and run_id in self._thread_runs:
            self._thread.close_run(run_id, status)
            return
        for reg in self._registered(run_id):
            with contextlib.suppress(OSError):
                reg.spool.append_record({"close": status})
        self._wake()

    def forget_run(self, run_id: str) -> list[Any]:
        if self._thread is not None and run_id in self._thread_runs:
            self._thread_runs.discard(run_id)
            return self._thread.forget_run(run_id)
        with self._lock:
            for name in [n for n, r in self._spools.items() if r.run_id == run_id]:
                del self._spools[name]
        return []

    def pending_items(self, run_id: str) -> int:
        if self._thread is not None and run_id in self._thread_runs:
            return self._thread.pending_items(run_id)
        return sum(read_ack(r.spool.path).pending for r in self._registered(run_id))

    def refused(self, run_id: str) -> tuple[list[Refused], Quarantine | None]:
        if self._thread is not None and run_id in self._thread_runs:
            return self._thread.refused(run_id)
        refused: list[Refused] = []
        quarantine: Quarantine | None = None
        for reg in self._registered(run_id):
            ack = read_ack(reg.spool.path)
            for entry in ack.refused:
                kind = {"metric": Metric, "param": Param, "tag": Tag}.get(entry.get("kind", ""))
                if kind is not None:
                    refused.append(Refused(Item(kind(*entry["record"])), str(entry.get("reason", ""))))
            if ack.quarantine and quarantine is None:
                quarantine = Quarantine(quarantine_root(Path(self._settings.data_dir)), run_id)
        return refused, quarantine

    def close_sinks(self) -> None:
        """The extra sinks live in the writer process, which closes them when it exits."""
        if self._thread is not None:
            self._thread.close_sinks()

    def stop(self, timeout: float = 5.0) -> None:
        self.flush(timeout)

    def _registered(self, run_id: str | None) -> list[_Registered]:
        with self._lock:
            return [r for r in self._spools.values() if run_id in (None, r.run_id) and not r.spool.closed]

    def _wake(self) -> None:
        if _address is None or not self._send(b"wake", _address[0]):
            self._ensure_writer()

    # -- flushing -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None, run_id: str | None = None) -> None:
        """Wait until the writer process has delivered everything logged before this call."""
        if self._thread is not None:
            self._thread.flush(timeout, run_id=run_id)
        waits: list[tuple[_Registered, int]] = []
        for reg in self._registered(None):
            bound = reg.spool.claim_bound()
            reg.flushes += 1
            try:
                reg.spool.append_record({"flush": reg.flushes, "bound": bound})
            except OSError:
                continue  # closed under us, or no room: nothing more to wait for here
            waits.append((reg, reg.flushes))
        if not waits:
            return
        self._wake()
        progress = self.progress
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0005
        next_check = time.monotonic() + 0.5
        acks: dict[str, Ack] = {}
        while True:
            remaining = []
            for reg, number in waits:
                ack = read_ack(reg.spool.path)
                acks[reg.spool.path.name] = ack
                if ack.flush < number:
                    remaining.append((reg, number))
                self._progress_seen = max(self._progress_seen, ack.progress)
            waits = remaining
            if not waits:
                break
            now = time.monotonic()
            if self._progress_seen != progress:
                progress = self._progress_seen
                deadline = None if timeout is None else now + timeout
            elif deadline is not None and now >= deadline:
                pending = sum(a.pending for a in acks.values())
                raise LoggingFailedError(
                    f"timed out: the store made no progress for {timeout:.1f}s; "
                    f"{pending} item(s) are still being retried in the background",
                    hint="check that the tracking server is reachable, then call mltrack.flush()",
                )
            if now >= next_check:  # the writer may have died: a new one takes over
                self._ensure_writer()
                next_check = now + 0.5
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        for name, ack in acks.items():
            with self._lock:
                reg_ = self._spools.get(name)
            if ack.error and (run_id is None or (reg_ is not None and reg_.run_id == run_id)):
                raise LoggingFailedError(ack.error, hint=FAILED_HINT)


# -- the writer process ---------------------------------------------------------------------


@dataclass
class _Tracked:
    folder: Path
    reader: SpoolReader
    lock_fd: int  # our descriptor of the spool's lock: lockable once its process let go
    own_fd: int  # writer.lock, held while we deliver this spool
    run_id: str | None = None
    opened: bool = False
    wanted: int = 0  # last flush asked for
    bound: int = 0
    acked: int = -1
    progress_written: int = -1
    closed_status: str | None = None


class WriterProcess:
    def __init__(self, sock: socket.socket, socket_path: str, parent: int) -> None:
        from mltrack.config.settings import get_settings
        from mltrack.plugins.manager import extra_sinks

        self.parent = parent
        self.socket_path = socket_path
        self.sock = sock

        settings = get_settings()
        self.interval = settings.flush_interval_ms / 1000
        self.writer = BackgroundWriter(
            flush_interval_s=self.interval,
            retries=settings.write_retries,
            backoff_s=settings.retry_backoff_s,
            extra_sinks=extra_sinks(),
            start_thread=False,
        )
        self.tracked: dict[str, _Tracked] = {}
        self.orphans: dict[Path, float] = {}  # spools of dead workers of live runs, next try time

    def run(self) -> None:
        idle_since = time.monotonic()
        try:
            while True:
                self._receive()
                self._step()
                if self.tracked or self.orphans:
                    idle_since = time.monotonic()
                elif os.getppid() != self.parent or time.monotonic() - idle_since > IDLE_EXIT_S:
                    # A registration sent meanwhile is not lost for good: the sender's next
                    # wake fails, and it starts a writer and registers its spools again.
                    return
        finally:
            self.writer.close_sinks()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)

    def _receive(self) -> None:
        self.sock.settimeout(self.interval)
        try:
            messages = [self.sock.recv(65536)]
        except TimeoutError:
            return
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(self.sock.recv(65536))
        for message in messages:
            if message.startswith(b"register "):
                self._register(Path(os.fsdecode(message[len(b"register ") :])))

    def _register(self, folder: Path) -> None:
        if folder.name in self.tracked:
            return
        try:
            own_fd = os.open(folder / WRITER_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(own_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(own_fd)  # another writer (of a restarted tree) has it
            return
        if not spool_owner_alive(folder):
            # a registration that arrived after its process died: the spool is replay's now
            os.close(own_fd)
            return
        try:
            lock_fd = os.open(folder / "lock", os.O_RDWR)
            reader = SpoolReader(folder)
        except OSError:
            os.close(own_fd)
            return
        self.tracked[folder.name] = _Tracked(folder, reader, lock_fd, own_fd)

    def _step(self) -> None:
        bounds: dict[str, int] = {}
        for tracked in list(self.tracked.values()):
            # whether its process let go is decided before reading: what it wrote before is then read
            gone = self._owner_gone(tracked)
            self._read_log(tracked, queue=not gone)
            if gone:
                # what it wrote is left to replay (which resends it): nothing more is queued
                self._drop(tracked)
                continue
            if tracked.wanted > tracked.acked:
                bounds[tracked.folder.name] = tracked.bound
        self.writer.cycle(bounds)
        for tracked in list(self.tracked.values()):
            self._answer(tracked)
            if tracked.closed_status is not None and tracked.opened:
                # ended by its process: the sinks hear of it now, the folder goes when it lets go
                self.writer.close_run(tracked.run_id or "", tracked.closed_status)
                tracked.opened = False
        self._retry_orphans()

    def _read_log(self, tracked: _Tracked, *, queue: bool = True) -> None:
        reader = tracked.reader
        reader.poll_log()
        records, reader.inbox = reader.inbox, []
        key = tracked.folder.name
        for record in records:
            if "header" in record or "run" in record:
                run_id = reader.header.get("run_id") or record.get("run")
                if isinstance(run_id, str) and run_id:
                    tracked.run_id = run_id
            elif "open" in record and tracked.run_id and isinstance(record["open"], list):
                experiment_id, run_name = (record["open"] + [None, None])[:2]
                self._open(tracked, str(experiment_id), run_name)
            elif not tracked.opened or not queue:
                continue  # before the run was bound, or its process is gone: nothing to send
            elif "p" in record:
                self.writer.put((PARAM, key, *record["p"]))
            elif "t" in record:
                self.writer.put((TAG, key, *record["t"]))
            elif "flush" in record:
                tracked.wanted = max(tracked.wanted, int(record["flush"]))
                tracked.bound = max(tracked.bound, int(record.get("bound", 0)))
            elif "close" in record:
                tracked.closed_status = str(record["close"])

    def _open(self, tracked: _Tracked, experiment_id: str, run_name: str | None) -> None:
        assert tracked.run_id is not None
        uri = tracked.reader.header.get("tracking_uri")
        store = get_store(uri if isinstance(uri, str) else None)
        self.writer.open_run(
            tracked.run_id,
            MlflowSink(store),
            experiment_id,
            run_name,
            tracked.reader,
            key=tracked.folder.name,
            quarantine_dir=quarantine_root(tracked.folder.parent.parent.parent),
        )
        tracked.opened = True

    def _answer(self, tracked: _Tracked) -> None:
        progress = self.writer.progress
        if tracked.wanted == tracked.acked and tracked.progress_written == progress:
            return
        error, pending, refused = self.writer.route_state(tracked.folder.name)
        route_quarantine = None
        if refused and tracked.run_id:
            route_quarantine = str(quarantine_root(tracked.folder.parent.parent.parent) / tracked.run_id)
        ack = {
            "flush": tracked.wanted,
            "progress": progress,
            "error": error,
            "pending": pending,
            "refused": [r.as_json() for r in refused[:MAX_REFUSED_IN_ACK]],
            "quarantine": route_quarantine,
        }
        target = tracked.folder / ACK_FILE
        temporary = tracked.folder / f"{ACK_FILE}.tmp"
        try:
            temporary.write_text(json.dumps(ack, ensure_ascii=True))
            os.replace(temporary, target)  # readers never see half a file
        except OSError:
            return  # the folder was removed: its process ended the run
        tracked.acked = tracked.wanted
        tracked.progress_written = progress

    def _owner_gone(self, tracked: _Tracked) -> bool:
        try:
            fcntl.flock(tracked.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _drop(self, tracked: _Tracked) -> None:
        """Its process ended the run and removed the spool, or let go of it (a failed
        ``end_run``), or died: in the last two cases the spool is left to replay, ours only
        while the run goes on in another process."""

        if tracked.closed_status is not None and tracked.opened:
            self.writer.close_run(tracked.run_id or "", tracked.closed_status)
        self.writer.forget_run(tracked.folder.name)
        tracked.reader.close()
        os.close(tracked.lock_fd)
        del self.tracked[tracked.folder.name]
        if tracked.folder.exists() and live_rank_exists(tracked.folder):
            self.orphans[tracked.folder] = 0.0
        os.close(tracked.own_fd)  # after the folder is queued: no other writer takes it meanwhile

    def _retry_orphans(self) -> None:
        if not self.orphans:
            return

        now = time.monotonic()
        for folder, when in list(self.orphans.items()):
            if when > now:
                continue
            if not folder.exists():
                del self.orphans[folder]
                continue
            fd = try_lock(folder)
            if fd is None:
                del self.orphans[folder]  # someone else (mltrack sync) has it
                continue
            report = replay_folder(folder, fd, detected_by=f"the mltrack writer process {os.getpid()}")
            if report.ok:
                del self.orphans[folder]
            else:
                self.orphans[folder] = now + 5.0
            if os.getppid() != self.parent and self.orphans and report.error:
                # nobody is left to wait for: leave it to `mltrack sync` or the next process
                logger.warning("mltrack writer: spool %s kept for `mltrack sync`: %s", folder, report.error)
                del self.orphans[folder]


def main() -> None:
    socket_path = os.environ[ENV_SOCKET]
    parent = int(os.environ[ENV_PARENT])
    # bound before the imports below: the starting process waits for this socket to exist
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(socket_path)
    settings = json.loads(os.environ.get(ENV_SETTINGS) or "{}")
    for name in (ENV_SOCKET, ENV_PARENT, ENV_SETTINGS):
        os.environ.pop(name, None)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from mltrack.config.settings import configure

    settings.pop("plugins", None)  # re-read from the same files and environment
    configure(**{k: v for k, v in settings.items() if v is not None})
    # MLflow's import takes seconds: take it now, while the training process creates its run
    import mlflow.tracking  # noqa: F401

    WriterProcess(sock, socket_path, parent).run()


if __name__ == "__main__":
    main()
