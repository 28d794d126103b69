"""The crash-safe spool: every accepted logging call is on disk before it is sent.

Each run a process logs to gets a spool folder
``<data_dir>/spool/<run_id>/<pid>-<ns>/`` holding:

- ``lock``: an exclusive ``flock`` held while the process lives. The kernel drops it
  when the process dies (SIGKILL included), which is how a later process knows the
  spool is orphaned; a live rank of a multi-process run is never replayed.
- ``seg-NNNNNN``: memory-mapped segments of fixed 32-byte metric slots. The logging
  call itself writes its slot (a ``struct.pack_into`` into a shared mapping, ~0.3 µs),
  so the point is in the kernel's page cache when the call returns and survives the
  process being killed. The writer flips a slot's state byte to *sent* once the store
  has confirmed it. A 32-byte slot never straddles a page, so a kill cannot tear one.
- ``log``: an append-only file of framed records (length, CRC32, JSON): the header,
  metric-name definitions, params, tags and the run's end status. These are rare, so
  they are written synchronously at the call.

Replay (``mltrack sync``, or the next process that starts a run on the same store)
sends every unsent slot and every param/tag, then removes the folder. The store makes
this exactly-once: metric rows are keyed by (key, value, timestamp, step) and inserted
with ON CONFLICT DO NOTHING, MLflow's server dedupes the same way, an identical param
may be logged again and a tag rewrite is idempotent.
"""

from __future__ import annotations

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
from typing import Any

SLOT = struct.Struct("<IHBBdqq")  # key id, reserved, state, reserved, value, timestamp, step
assert SLOT.size == 32
SEGMENT_BITS = 16
SEGMENT_SLOTS = 1 << SEGMENT_BITS  # 2 MiB per segment, allocated sparsely
SEGMENT_MASK = SEGMENT_SLOTS - 1
EMPTY, WRITTEN, SENT = 0, 1, 2
STATE_OFFSET = 6
FRAME = struct.Struct("<II")  # payload length, crc32


def spool_root(data_dir: Path) -> Path:
    return Path(data_dir) / "spool"


class RunSpool:
    """This process's spool for one run. Thread-safe; the metric path takes no lock."""

    def __init__(self, root: Path, run_id: str, tracking_uri: str) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.path = root / run_id / f"{os.getpid()}-{time.time_ns()}"
        self.path.mkdir(parents=True, exist_ok=False)
        self._lock_fd = os.open(self.path / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._log_fd = os.open(self.path / "log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._counter = itertools.count()
        self._maps: list[mmap.mmap] = []
        self._key_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self.closed = False
        self.append_record(
            {
                "header": 1,
                "run_id": run_id,
                "tracking_uri": tracking_uri,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "created_ms": int(time.time() * 1000),
            }
        )

    # -- the hot path ----------------------------------------------------------------

    def append_metric(self, key: str, value: float, timestamp: int, step: int) -> int:
        """Write one metric point to its slot and return the slot index."""
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._define_key(key)
        index = next(self._counter)  # atomic under the GIL: each caller gets its own slot
        segment = index >> SEGMENT_BITS
        maps = self._maps
        target = maps[segment] if segment < len(maps) else self._segment(segment)
        SLOT.pack_into(target, (index & SEGMENT_MASK) << 5, key_id, 0, WRITTEN, 0, value, timestamp, step)
        return index

    def mark_sent(self, slots: list[int]) -> None:
        """Record that the store confirmed these slots (called by the writer)."""
        if self.closed:
            return
        maps = self._maps
        for index in slots:
            maps[index >> SEGMENT_BITS][((index & SEGMENT_MASK) << 5) + STATE_OFFSET] = SENT

    # -- rare records ----------------------------------------------------------------

    def append_record(self, record: dict[str, Any]) -> None:
        payload = json.dumps(record, separators=(",", ":")).encode()
        with self._lock:
            os.write(self._log_fd, FRAME.pack(len(payload), zlib.crc32(payload)) + payload)

    def _define_key(self, key: str) -> int:
        with self._lock:
            key_id = self._key_ids.get(key)
            if key_id is None:
                key_id = len(self._key_ids)
                payload = json.dumps({"k": key, "id": key_id}, separators=(",", ":")).encode()
                os.write(self._log_fd, FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
                self._key_ids[key] = key_id  # published only once its definition is on disk
        return key_id

    def _segment(self, segment: int) -> mmap.mmap:
        with self._lock:
            while len(self._maps) <= segment:
                number = len(self._maps)
                fd = os.open(self.path / f"seg-{number:06d}", os.O_CREAT | os.O_RDWR, 0o600)
                try:
                    os.ftruncate(fd, SEGMENT_SLOTS * SLOT.size)
                    self._maps.append(mmap.mmap(fd, SEGMENT_SLOTS * SLOT.size))
                finally:
                    os.close(fd)
            return self._maps[segment]

    # -- lifecycle -------------------------------------------------------------------

    def close(self, *, delete: bool) -> None:
        """Release the spool; ``delete`` once everything in it is in the store."""
        if self.closed:
            return
        self.closed = True
        for target in self._maps:
            target.flush()
        os.close(self._log_fd)
        if delete:
            shutil.rmtree(self.path, ignore_errors=True)
            _remove_if_empty(self.path.parent)
        os.close(self._lock_fd)  # releases the lock; a kept spool is now replayable
        for target in self._maps:
            target.close()


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
    problems: list[str] = field(default_factory=list)
    sent: int = 0


def _read_frames(path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    data = path.read_bytes()
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
        if zlib.crc32(payload) != crc:
            problems.append(f"{path}: corrupt record at byte {offset} (checksum mismatch) skipped")
        else:
            try:
                yield json.loads(payload)
            except ValueError:
                problems.append(f"{path}: unreadable record at byte {offset} skipped")
        offset += FRAME.size + length


def read_spool(path: Path) -> SpoolContents:
    """Everything a spool holds that the store has not confirmed."""
    problems: list[str] = []
    header: dict[str, Any] = {}
    keys: dict[int, str] = {}
    contents = SpoolContents(path, header, problems=problems)
    for record in _read_frames(path / "log", problems):
        if "header" in record:
            header.update(record)
        elif "k" in record:
            keys[record["id"]] = record["k"]
        elif "p" in record:
            contents.params.append((record["p"][0], record["p"][1]))
        elif "t" in record:
            contents.tags.append((record["t"][0], record["t"][1]))
        elif "end" in record:
            contents.end = record
    for segment in sorted(path.glob("seg-*")):
        data = segment.read_bytes()
        for number, (key_id, _, state, _, value, timestamp, step) in enumerate(SLOT.iter_unpack(data)):
            if state == SENT:
                contents.sent += 1
            elif state == WRITTEN:
                key = keys.get(key_id)
                if key is None:
                    problems.append(f"{segment}: slot {number} names unknown metric id {key_id}; skipped")
                else:
                    contents.metrics.append((key, value, timestamp, step))
            elif state != EMPTY:
                problems.append(f"{segment}: slot {number} has an invalid state {state}; skipped")
    return contents


def try_lock(path: Path) -> int | None:
    """Lock an orphaned spool for replay; None if its process is alive (or another
    replayer has it)."""
    try:
        fd = os.open(path / "lock", os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def spool_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for run in root.iterdir() if run.is_dir() for p in run.iterdir() if p.is_dir())
