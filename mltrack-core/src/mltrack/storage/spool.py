"""The crash-safe spool: every accepted logging call is on disk before it is sent.

Each run a process logs to gets a spool folder
``<data_dir>/spool/<run_id>/<pid>-<ns>/`` holding:

- ``lock``: an exclusive ``flock`` held while the process lives. The kernel drops it
  when the process dies (SIGKILL included), which is how a later process knows the
  spool is orphaned; a live rank of a multi-process run is never replayed.
- ``seg-NNNNNN``: memory-mapped segments of fixed 32-byte metric slots. The logging
  call itself writes its slot (a ``struct.pack_into`` into a shared mapping, ~0.3 µs),
  so the point is in the kernel's page cache when the call returns and survives the
  process being killed. The writer reads the slots back (the spool *is* the metric
  queue, so a backlog costs disk, not memory) and flips a slot's state byte to *sent*
  once the store has confirmed it. A slot's state byte is written last, so a kill
  cannot tear one. A segment's blocks are reserved (``posix_fallocate``) before it is
  mapped: a full disk is a ``SpoolFullError`` at the call, never a SIGBUS.
- ``log``: an append-only file of framed records (marker, length, CRC32, JSON): the
  header, metric-name definitions, params, tags and the run's end status. These are
  rare, so they are written synchronously at the call. The marker byte ``0xff`` never
  occurs in the ASCII JSON payloads, so a reader skips a torn or damaged record and
  finds the next one: damage costs only the record it hits.

A spool is created *before* the store's ``create_run`` (under ``_starting/``, with a
random ``spool_id`` that is also set as the run's ``mltrack.spool_id`` tag), so a
process killed between creating the run and its first logging call still leaves a
spool that ``mltrack sync`` uses to find the run and mark it ``KILLED``.

An offline run (``mode = "offline"``, see ``mltrack.tracking.offline``) has no run in the store at
all: its spool, ``<data_dir>/spool/offline-<spool_id>/<pid>-<ns>/``, is its only record,
and its header holds what ``create_run`` needs (experiment, name, start time, tags). Replay
creates the run, or finds the one an interrupted replay created, by the ``spool_id`` tag.

Replay (``mltrack sync``, or the next process that starts a run on the same store)
sends every unsent slot and every param/tag, then removes the folder. The store makes
this exactly-once: metric rows are keyed by (key, value, timestamp, step) and inserted
with ON CONFLICT DO NOTHING, MLflow's server dedupes the same way, an identical param
may be logged again and a tag rewrite is idempotent.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import mmap
import os
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mltrack.errors import SpoolFullError

SLOT = struct.Struct("<IHBBdqq")  # key id, reserved, state, reserved, value, timestamp, step
assert SLOT.size == 32
SEGMENT_BITS = 16
SEGMENT_SLOTS = 1 << SEGMENT_BITS  # 2 MiB per segment
SEGMENT_BYTES = SEGMENT_SLOTS * SLOT.size
SEGMENT_MASK = SEGMENT_SLOTS - 1
# Slot states. SKIPPED marks a flush's bound (no data); REFUSED a point the store
# refused, kept in the quarantine instead.
EMPTY, WRITTEN, SENT, SKIPPED, REFUSED = 0, 1, 2, 3, 4
FINAL_STATES = (SENT, SKIPPED, REFUSED)
STATE_OFFSET = 6
MARKER = b"\xff\x4d\x54\x52"  # 0xff 'MTR': a record starts here
FRAME = struct.Struct("<II")  # payload length, crc32 (after the marker)
STARTING = "_starting"  # spools whose run is not created yet
SPOOL_ID_TAG = "mltrack.spool_id"  # set on a run at creation: replay finds it by its spool's id
REFUSED_TAG = "mltrack.refused"  # what the store refused of a run, and where it is kept
# Log records addressed to the writer process (see mltrack.tracking.writer_process), not data.
WRITER_RECORDS = {"flush", "open", "close"}
ACK_FILE = "ack"  # the writer process's answer, in the spool folder
WRITER_LOCK = "writer.lock"  # held by the writer process while it delivers the spool
# A writer process lets go of a dead process's spool at its next cycle; a cycle delivering a large
# batch on a loaded machine takes seconds (2 s was exceeded under CI-like load), and waiting only
# costs anything when a process died with its writer still delivering.
WRITER_LET_GO_S = 10.0


def spool_root(data_dir: Path) -> Path:
    return Path(data_dir) / "spool"


def quarantine_root(data_dir: Path) -> Path:
    """Where refused records and damaged spools are kept, never deleted by MLTrack."""
    return Path(data_dir) / "quarantine"


def _spool_full(folder: Path, exc: OSError) -> SpoolFullError:
    try:
        free = shutil.disk_usage(folder).free
        room = f"{free / 1e6:.1f} MB free"
    except OSError:
        room = "free space unknown"
    return SpoolFullError(
        f"the spool folder {folder} has no room ({exc.strerror or exc}; {room}): the value was not accepted",
        hint="free disk space (or point MLTRACK_DATA_DIR elsewhere); logging works again as soon as there is room",
    )


def _is_no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_fully(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - a regular file never writes 0 bytes without an error
            raise OSError(errno.EIO, "write wrote nothing")
        view = view[written:]


def frame(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()  # ensure_ascii: never a 0xff byte
    return MARKER + FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _reserve(fd: int, size: int) -> None:
    """Allocate the file's blocks now, so writing through a mapping can never fault."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    # macOS has no posix_fallocate: writing zeros allocates the blocks just the same
    zeros = bytes(1 << 16)
    for offset in range(0, size, len(zeros)):
        os.pwrite(fd, zeros, offset)


class SpoolSlot(NamedTuple):
    """A metric point read back from a spool slot."""

    slot: int
    key: str
    value: float
    timestamp: int
    step: int


class RunSpool:
    """This process's spool for one run. Thread-safe; the metric path takes no lock."""

    def __init__(
        self,
        root: Path,
        run_id: str | None,
        tracking_uri: str,
        *,
        spool_id: str | None = None,
        experiment_id: str | None = None,
        header: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.spool_id = spool_id
        self.root = root
        self.name = f"{os.getpid()}-{time.time_ns()}"
        self.path = root / (run_id or STARTING) / self.name
        self._counter = itertools.count()
        self._maps: list[mmap.mmap | None] = []
        self._key_ids: dict[str, int] = {}
        self.key_names: list[str] = []
        # Slot indices handed out whose call failed before writing them (no room for
        # their segment): readers step over them instead of waiting.
        self.abandoned: set[int] = set()
        self._trimmed: set[int] = set()
        # Set when another process (the writer process) reads this spool: this process then
        # never reads its slots back, so full segments leave its memory as soon as it moves on.
        self.read_elsewhere = False
        self._lock = threading.Lock()
        # Taken by the writer's reads and marks and by close(), never by the logging calls:
        # the writer never touches a mapping that close() is unmapping.
        self._io_lock = threading.Lock()
        self.closed = False
        self._log_fd = -1
        self._lock_fd = -1
        try:
            self.path.mkdir(parents=True, exist_ok=False)
            self._lock_fd = os.open(self.path / "lock", os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._log_fd = os.open(self.path / "log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            self._log_size = 0
            self.append_record(
                {
                    "header": 1,
                    "run_id": run_id,
                    "spool_id": spool_id,
                    "experiment_id": experiment_id,
                    "tracking_uri": tracking_uri,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "created_ms": int(time.time() * 1000),
                    **(header or {}),
                }
            )
        except BaseException as exc:
            self._discard()
            if isinstance(exc, OSError) and _is_no_space(exc):
                raise _spool_full(root, exc) from None
            raise

    def _discard(self) -> None:
        for fd in (self._log_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._log_fd = self._lock_fd = -1
        self.closed = True
        shutil.rmtree(self.path, ignore_errors=True)
        _remove_if_empty(self.path.parent)

    def bind(self, run_id: str) -> None:
        """Name the run a spool made before ``create_run`` belongs to, and move it there."""
        self.append_record({"run": run_id})
        target = self.root / run_id / self.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path, target)  # open descriptors and the lock follow the folder
        _remove_if_empty(self.path.parent)
        self.path = target
        self.run_id = run_id

    # -- the hot path ----------------------------------------------------------------

    def append_metric(self, key: str, value: float, timestamp: int, step: int) -> int:
        """Write one metric point to its slot and return the slot index."""
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._define_key(key)
        index = next(self._counter)  # atomic under the GIL: each caller gets its own slot
        segment = index >> SEGMENT_BITS
        maps = self._maps
        target: Any = maps[segment] if segment < len(maps) else None
        if target is None:
            try:
                target = self._segment(segment)
            except BaseException:
                self.abandoned.add(index)
                raise
        offset = (index & SEGMENT_MASK) << 5
        try:
            SLOT.pack_into(target, offset, key_id, 0, EMPTY, 0, value, timestamp, step)
        except BaseException:
            self.abandoned.add(index)
            raise
        # The state byte last, in one store: a kill between the two writes leaves an EMPTY
        # slot (a call that never returned), never a WRITTEN slot with half its fields.
        target[offset + STATE_OFFSET] = WRITTEN
        return index

    def claim_bound(self) -> int:
        """A slot index above every slot of a call that has returned (for ``flush``).

        The index is taken from the same counter as the metric calls and marked
        SKIPPED, so readers pass it; calls still in flight on other threads may hold
        lower indices that fill in later.
        """
        index = next(self._counter)
        try:
            target = self._maps[index >> SEGMENT_BITS] if (index >> SEGMENT_BITS) < len(self._maps) else None
            if target is None:
                target = self._segment(index >> SEGMENT_BITS)
            SLOT.pack_into(target, (index & SEGMENT_MASK) << 5, 0, 0, SKIPPED, 0, 0.0, 0, 0)
        except (SpoolFullError, OSError, TypeError, ValueError):
            self.abandoned.add(index)
        return index

    # -- the writer's side -------------------------------------------------------------

    def read_slots(self, start: int, bound: int | None, limit: int) -> tuple[list[SpoolSlot], int, int | None]:
        """Written, unsent slots from ``start``: at most ``limit``, up to ``bound``
        (exclusive) or, without one, up to the first slot not yet written.

        Returns the slots, the index to continue from, and the first slot passed that
        another thread's call is still writing (None if none): below that *hole* and
        the slots returned, everything is sent, refused, skipped or abandoned.
        """
        with self._io_lock:
            if self.closed:
                return [], start, None
            return self._read_slots(start, bound, limit)

    def _read_slots(self, start: int, bound: int | None, limit: int) -> tuple[list[SpoolSlot], int, int | None]:
        found: list[SpoolSlot] = []
        hole: int | None = None
        index = start
        maps = self._maps
        names = self.key_names
        abandoned = self.abandoned
        unpack = SLOT.unpack_from
        while len(found) < limit and (bound is None or index < bound):
            segment = index >> SEGMENT_BITS
            if segment >= len(maps):
                break
            target = maps[segment]
            if target is None:  # released: everything in it was final
                index = (segment + 1) << SEGMENT_BITS
                continue
            key_id, _, state, _, value, timestamp, step = unpack(target, (index & SEGMENT_MASK) << 5)
            if state == WRITTEN:
                found.append(SpoolSlot(index, names[key_id], value, timestamp, step))
            elif state == EMPTY and index not in abandoned:
                if bound is None:
                    break  # the end of what has been written
                if hole is None:
                    hole = index  # in flight on another thread: look past it up to the bound
            index += 1
        return found, index, hole

    def mark(self, slots: list[int], state: int = SENT) -> None:
        """Record that the store confirmed (or refused) these slots."""
        with self._io_lock:
            if self.closed:
                return
            maps = self._maps
            for index in slots:
                target = maps[index >> SEGMENT_BITS]
                if target is not None:
                    target[((index & SEGMENT_MASK) << 5) + STATE_OFFSET] = state

    def mark_sent(self, slots: list[int]) -> None:
        self.mark(slots, SENT)

    def release_below(self, cursor: int) -> None:
        """Unmap and delete segments whose every slot is final: a long run's spool
        stays small, and so does the process's memory."""
        with self._io_lock, self._lock:
            if self.closed:
                return
            _release_segments(self._maps, self.path, cursor)

    def trim(self) -> None:
        """Drop the pages of full segments from this process's memory (they stay in the
        file and the page cache, and are read back on demand), so a long outage's
        backlog does not grow the training process."""
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        with self._io_lock:
            if self.closed:
                return
            maps = self._maps
            for number in range(len(maps) - 1):  # the last segment is still being written
                target = maps[number]
                if target is not None and number not in self._trimmed:
                    target.madvise(mmap.MADV_DONTNEED)
                    self._trimmed.add(number)

    def written_since(self, cursor: int) -> int:
        """How many slots from ``cursor`` on are written but not yet sent."""
        with self._io_lock:
            return 0 if self.closed else self._written_since(cursor)

    def _written_since(self, cursor: int) -> int:
        total = 0
        for number, target in enumerate(self._maps):
            if target is None or ((number + 1) << SEGMENT_BITS) <= cursor:
                continue
            states = target[STATE_OFFSET::32]
            if (number << SEGMENT_BITS) < cursor:
                states = states[cursor & SEGMENT_MASK :]
            total += states.count(WRITTEN)
        return total

    # -- rare records ----------------------------------------------------------------

    def append_record(self, record: dict[str, Any]) -> None:
        """Append a framed record to the log; on failure nothing of it remains."""
        data = frame(record)
        with self._lock:
            self._append_locked(data)

    def _append_locked(self, data: bytes) -> None:
        try:
            write_fully(self._log_fd, data)
        except OSError as exc:
            # cut a partial record off again, so the log stays clean for the next one
            try:
                os.ftruncate(self._log_fd, self._log_size)
            except OSError:
                pass  # the reader resynchronises on the next marker anyway
            if _is_no_space(exc):
                raise _spool_full(self.path, exc) from None
            raise
        self._log_size += len(data)

    def _define_key(self, key: str) -> int:
        with self._lock:
            key_id = self._key_ids.get(key)
            if key_id is None:
                key_id = len(self.key_names)
                self._append_locked(frame({"k": key, "id": key_id}))
                self.key_names.append(key)
                self._key_ids[key] = key_id  # published only once its definition is on disk
        return key_id

    def _segment(self, segment: int) -> mmap.mmap:
        with self._lock:
            if self.read_elsewhere and len(self._maps) <= segment:
                self._drop_full_segments()
            while len(self._maps) <= segment:
                number = len(self._maps)
                name = self.path / f"seg-{number:06d}"
                fd = os.open(name, os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    _reserve(fd, SEGMENT_BYTES)
                    self._maps.append(mmap.mmap(fd, SEGMENT_BYTES))
                except OSError as exc:
                    os.unlink(name)
                    if _is_no_space(exc):
                        raise _spool_full(self.path, exc) from None
                    raise
                finally:
                    os.close(fd)
            target = self._maps[segment]
            assert target is not None
            return target

    def _drop_full_segments(self) -> None:
        """Drop earlier segments' pages (the writer process reads them from the file);
        unmap those the writer process deleted: every slot in them was final, so no
        call of this process can still be writing to them."""
        for number, target in enumerate(self._maps):
            if target is None:
                continue
            if not (self.path / f"seg-{number:06d}").exists():
                self._maps[number] = None
                target.close()
            elif hasattr(mmap, "MADV_DONTNEED") and number not in self._trimmed:
                target.madvise(mmap.MADV_DONTNEED)
                self._trimmed.add(number)

    # -- lifecycle -------------------------------------------------------------------

    def close(self, *, delete: bool) -> None:
        """Release the spool; ``delete`` once everything in it is in the store."""
        with self._io_lock:
            if self.closed:
                return
            self.closed = True
        maps = [m for m in self._maps if m is not None]
        if not delete:
            for target in maps:
                target.flush()
        os.close(self._log_fd)
        if delete:
            shutil.rmtree(self.path, ignore_errors=True)
            _remove_if_empty(self.path.parent)
        os.close(self._lock_fd)  # releases the lock; a kept spool is now replayable
        for target in maps:
            target.close()


def _release_segments(maps: list[mmap.mmap | None], folder: Path, cursor: int) -> None:
    """Unmap and delete the segments wholly below slot ``cursor`` (every slot in them is final)."""
    for number in range(min(cursor >> SEGMENT_BITS, len(maps))):
        target = maps[number]
        if target is None:
            continue
        maps[number] = None
        target.close()
        try:
            os.unlink(folder / f"seg-{number:06d}")
        except OSError:
            pass


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# -- reading a spool back --------------------------------------------------------------


@dataclass
class SpoolContents:
    path: Path
    header: dict[str, Any]
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    bound_run_id: str | None = None
    problems: list[str] = field(default_factory=list)
    sent: int = 0

    @property
    def run_id(self) -> str | None:
        return self.bound_run_id or self.header.get("run_id") or None


def _read_legacy_frames(path: Path, data: bytes, problems: list[str]) -> Iterator[dict[str, Any]]:
    """Logs written before records had a marker (MLTrack 0.1.0)."""
    offset = 0
    while offset < len(data):
        if offset + FRAME.size > len(data):
            problems.append(f"{path}: truncated record header at byte {offset} skipped")
            return
        length, crc = FRAME.unpack_from(data, offset)
        payload = data[offset + FRAME.size : offset + FRAME.size + length]
        if len(payload) < length:
            problems.append(f"{path}: truncated record at byte {offset} ({len(payload)} of {length} bytes) skipped")
            return
        if zlib.crc32(payload) == crc:
            try:
                yield json.loads(payload)
            except ValueError:
                problems.append(f"{path}: unreadable record at byte {offset} skipped")
        else:
            problems.append(f"{path}: corrupt record at byte {offset} (checksum mismatch) skipped")
        offset += FRAME.size + length


def _read_frames(path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{path}: missing")
        return
    if data and not data.startswith(MARKER) and FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, 0)
        if length <= len(data) - FRAME.size and zlib.crc32(data[FRAME.size : FRAME.size + length]) == crc:
            yield from _read_legacy_frames(path, data, problems)
            return
    offset = 0
    head = MARKER
    size = len(data)
    while offset < size:
        if not data.startswith(head, offset):
            following = data.find(head, offset + 1)
            end = size if following < 0 else following
            kind = "truncated record" if following < 0 else "unreadable bytes"
            problems.append(f"{path}: {kind} at byte {offset} ({end - offset} bytes) skipped")
            offset = end
            continue
        start = offset + len(head)
        if start + FRAME.size > size:
            problems.append(f"{path}: truncated record at byte {offset} skipped")
            return
        length, crc = FRAME.unpack_from(data, start)
        payload = data[start + FRAME.size : start + FRAME.size + length]
        if len(payload) == length and zlib.crc32(payload) == crc:
            try:
                record = json.loads(payload)
            except ValueError:
                record = None
            if isinstance(record, dict):
                yield record
                offset = start + FRAME.size + length
                continue
        following = data.find(head, offset + 1)
        reason = "truncated record" if len(payload) < length and following < 0 else "damaged record"
        problems.append(f"{path}: {reason} at byte {offset} skipped")
        offset = size if following < 0 else following


def read_spool(path: Path) -> SpoolContents:
    """Everything a spool holds that the store has not confirmed. Never raises on
    damaged content: what cannot be read is listed in ``problems``."""
    problems: list[str] = []
    header: dict[str, Any] = {}
    keys: dict[int, str] = {}
    contents = SpoolContents(path, header, problems=problems)
    for record in _read_frames(path / "log", problems):
        if "header" in record:
            header.update(record)
        elif "k" in record and isinstance(record.get("id"), int) and isinstance(record["k"], str):
            keys[record["id"]] = record["k"]
        elif "p" in record and _is_pair(record["p"]):
            contents.params.append((record["p"][0], record["p"][1]))
        elif "t" in record and _is_pair(record["t"]):
            contents.tags.append((record["t"][0], record["t"][1]))
        elif "end" in record:
            contents.end = record
        elif "run" in record and isinstance(record["run"], str):
            contents.bound_run_id = record["run"]
        elif record.keys() & WRITER_RECORDS:
            pass  # messages to the writer process: nothing to deliver
        else:
            problems.append(f"{path / 'log'}: unknown record {str(record)[:80]} skipped")
    for segment in sorted(path.glob("seg-*")):
        data = segment.read_bytes()
        usable = len(data) - len(data) % SLOT.size
        if usable != len(data):
            problems.append(f"{segment}: {len(data) - usable} trailing byte(s) of a partial slot skipped")
        for number, (key_id, _, state, _, value, timestamp, step) in enumerate(SLOT.iter_unpack(data[:usable])):
            if state in FINAL_STATES:
                contents.sent += state == SENT
            elif state == WRITTEN:
                key = keys.get(key_id)
                if key is None:
                    problems.append(f"{segment}: slot {number} names unknown metric id {key_id}; skipped")
                else:
                    contents.metrics.append((key, value, timestamp, step))
            elif state != EMPTY:
                problems.append(f"{segment}: slot {number} has an invalid state {state}; skipped")
    return contents


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def spool_owner_alive(folder: Path) -> bool:
    """Whether the process that wrote the spool (on this host) is still running."""
    header = read_spool_header(folder)
    return header.get("host") == socket.gethostname() and _pid_alive(header.get("pid"))


def try_lock(path: Path, wait_s: float | None = WRITER_LET_GO_S) -> int | None:
    """Lock an orphaned spool for replay; None if its process is alive (or another
    replayer has it, or a writer process still delivers it after ``wait_s``; ``None``:
    only whether its process let go matters).

    A spool whose lock file was deleted is judged by its header instead: it is taken
    (with a new lock file) only when the process that wrote it, on this host, is gone.
    """
    deadline = time.monotonic() + (wait_s or 0.0)
    while True:
        fd = _lock_if_let_go(path)
        if fd is None or wait_s is None:
            return fd
        if _writer_let_go(path):
            return fd
        # Its writer process has not noticed the death yet; it notices by taking the lock
        # itself, so let go of it while waiting.
        os.close(fd)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _lock_if_let_go(path: Path) -> int | None:
    try:
        fd = os.open(path / "lock", os.O_RDWR)
    except FileNotFoundError:
        header = read_spool_header(path)
        if header.get("host") == socket.gethostname() and _pid_alive(header.get("pid")):
            return None
        if header.get("host") not in (None, socket.gethostname()):
            return None  # another machine's spool: only that machine can tell
        try:
            fd = os.open(path / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        except OSError:
            return None
    for _ in range(50):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            # A writer process probing whether the process died holds it for a moment:
            # only a spool whose process is alive (or another host's) is busy for long.
            if not (path / WRITER_LOCK).exists() or spool_owner_alive(path):
                break
            time.sleep(0.01)
    os.close(fd)
    return None


def _writer_let_go(path: Path) -> bool:
    """Whether no writer process delivers the spool any more.

    Between the death of a spool's process and the moment its writer process notices, both
    could send the same slot; the writer lets go of ``writer.lock`` once it has stopped.
    It never takes the spool again: it only takes spools that live processes register.
    """
    try:
        fd = os.open(path / WRITER_LOCK, os.O_RDWR)
    except FileNotFoundError:
        return True  # never delivered by a writer process
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases our lock too: the writer does not come back for a dead process


def read_spool_header(folder: Path) -> dict[str, Any]:
    for record in _read_frames(folder / "log", []):
        return record if "header" in record else {}
    return {}


def spool_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for run in root.iterdir() if run.is_dir() for p in run.iterdir() if p.is_dir())


# -- the writer process's view of a live spool ----------------------------------------------


class SpoolReader:
    """Another process's spool, read by the writer process while that process logs to it.

    Maps the segments as the logging process creates them, parses the log's new records
    incrementally (metric names, params, tags, and the messages in ``WRITER_RECORDS``),
    and marks slots sent or refused in the shared files. Single-threaded.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        self.key_names: list[str] = []
        self._keys: dict[int, str] = {}
        self._maps: list[mmap.mmap | None] = []
        self.abandoned: set[int] = set()  # never known here: a slot left EMPTY is a hole
        self._log_fd = os.open(path / "log", os.O_RDONLY)
        self._offset = 0
        self._pending = b""
        self.header: dict[str, Any] = {}
        self.problems: list[str] = []
        self.inbox: list[dict[str, Any]] = []  # records read from the log, not yet handled
        self._trimmed: set[int] = set()

    def poll_log(self) -> None:
        """Read the log's complete new records into ``inbox`` (metric names are kept)."""
        if self.closed:
            return
        chunks = []
        while True:
            chunk = os.pread(self._log_fd, 1 << 20, self._offset)
            if not chunk:
                break
            chunks.append(chunk)
            self._offset += len(chunk)
        if not chunks:
            return
        data = self._pending + b"".join(chunks)
        records = self.inbox
        position = 0
        while position < len(data):
            start = data.find(MARKER, position)
            if start < 0:
                position = len(data)
                break
            head = start + len(MARKER)
            if head + FRAME.size > len(data):
                position = start
                break
            length, crc = FRAME.unpack_from(data, head)
            end = head + FRAME.size + length
            if end > len(data):
                position = start  # still being written: read it whole next time
                break
            payload = data[head + FRAME.size : end]
            record: Any = None
            if zlib.crc32(payload) == crc:
                try:
                    record = json.loads(payload)
                except ValueError:
                    record = None
            if not isinstance(record, dict):
                self.problems.append(f"{self.path / 'log'}: damaged record at byte {self._offset - len(data) + start}")
                position = start + 1
                continue
            position = end
            if "header" in record:
                self.header.update(record)
            elif "k" in record and isinstance(record.get("id"), int) and isinstance(record["k"], str):
                self._keys[record["id"]] = record["k"]
                while len(self.key_names) in self._keys:
                    self.key_names.append(self._keys[len(self.key_names)])
            records.append(record)
        self._pending = data[position:]

    def _map_new_segments(self) -> None:
        while True:
            name = self.path / f"seg-{len(self._maps):06d}"
            try:
                fd = os.open(name, os.O_RDWR)
            except FileNotFoundError:
                return
            try:
                if os.fstat(fd).st_size < SEGMENT_BYTES:
                    return  # still being reserved
                self._maps.append(mmap.mmap(fd, SEGMENT_BYTES))
            finally:
                os.close(fd)

    def read_slots(self, start: int, bound: int | None, limit: int) -> tuple[list[SpoolSlot], int, int | None]:
        if self.closed:
            return [], start, None
        self._map_new_segments()
        try:
            return RunSpool._read_slots(self, start, bound, limit)  # type: ignore[arg-type]
        except IndexError:
            # a slot of a metric whose name record was written after our last read of the log
            self.poll_log()
            try:
                return RunSpool._read_slots(self, start, bound, limit)  # type: ignore[arg-type]
            except IndexError:
                return [], start, start

    def mark(self, slots: list[int], state: int = SENT) -> None:
        if self.closed:
            return
        for index in slots:
            target = self._maps[index >> SEGMENT_BITS]
            if target is not None:
                target[((index & SEGMENT_MASK) << 5) + STATE_OFFSET] = state

    def release_below(self, cursor: int) -> None:
        """Delete segments whose every slot is final (the logging process unmaps them)."""
        _release_segments(self._maps, self.path, cursor)

    def trim(self) -> None:
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        for number, target in enumerate(self._maps[:-1]):
            if target is not None and number not in self._trimmed:
                target.madvise(mmap.MADV_DONTNEED)
                self._trimmed.add(number)

    def written_since(self, cursor: int) -> int:
        if self.closed:
            return 0
        self._map_new_segments()
        return RunSpool._written_since(self, cursor)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        os.close(self._log_fd)
        for target in self._maps:
            if target is not None:
                target.close()
        self._maps = []
