"""Replaying orphaned spools: what a dead process accepted but never sent."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mltrack.records import Batch, Metric, Param, Tag
from mltrack.spool import read_spool, spool_folders, try_lock
from mltrack.writer import split_batch

logger = logging.getLogger("mltrack.replay")


@dataclass
class ReplayReport:
    path: Path
    run_id: str
    tracking_uri: str | None
    metrics: int = 0
    params: int = 0
    tags: int = 0
    status_set: str | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _live_rank_exists(folder: Path) -> bool:
    """Whether another process still holds a spool of the same run (a live DDP rank)."""
    for sibling in folder.parent.iterdir():
        if sibling == folder or not sibling.is_dir():
            continue
        fd = try_lock(sibling)
        if fd is None and (sibling / "lock").exists():
            return True
        if fd is not None:
            os.close(fd)
    return False


def replay_folder(folder: Path, lock_fd: int, *, detected_by: str) -> ReplayReport:
    """Send a locked orphaned spool to its store, settle the run's status, remove it."""
    from mltrack.store import get_store

    contents = read_spool(folder)
    run_id = str(contents.header.get("run_id") or folder.parent.name)
    uri = contents.header.get("tracking_uri")
    report = ReplayReport(folder, run_id, uri, problems=list(contents.problems))
    try:
        if not uri:
            raise ValueError("the spool has no readable header naming its store")
        store = get_store(uri)
        batch = Batch(
            run_id,
            metrics=[Metric(*m) for m in contents.metrics],
            params=[Param(*p) for p in contents.params],
            tags=[Tag(*t) for t in contents.tags],
        )
        for part in split_batch(batch):
            store.write(part)
        report.metrics, report.params, report.tags = len(batch.metrics), len(batch.params), len(batch.tags)
        run = store.client.get_run(run_id)
        if run.info.status == "RUNNING":
            if contents.end is not None:
                store.client.set_terminated(run_id, contents.end["end"], end_time=contents.end.get("time"))
                report.status_set = contents.end["end"]
            elif not _live_rank_exists(folder):
                pid, host = contents.header.get("pid"), contents.header.get("host")
                now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                for key, value in (
                    ("mltrack.killed.detected_by", detected_by),
                    ("mltrack.killed.detected_at", now),
                    ("mltrack.killed.reason", f"process {pid} on {host} stopped without ending the run"),
                ):
                    store.client.set_tag(run_id, key, value)
                last = max((m[2] for m in contents.metrics), default=None)
                store.client.set_terminated(run_id, "KILLED", end_time=last or int(time.time() * 1000))
                report.status_set = "KILLED"
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"
        os.close(lock_fd)
        return report
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass
    os.close(lock_fd)
    for problem in report.problems:
        logger.warning("mltrack replay: %s", problem)
    return report


def replay_orphans(root: Path, *, tracking_uri: str | None = None, detected_by: str) -> list[ReplayReport]:
    """Replay every orphaned spool under ``root`` (only those of ``tracking_uri`` if given)."""
    reports: list[ReplayReport] = []
    for folder in spool_folders(root):
        fd = try_lock(folder)
        if fd is None:
            continue  # its process is alive, or another replayer has it
        if tracking_uri is not None:
            header = read_spool_header(folder)
            if header.get("tracking_uri") != tracking_uri:
                os.close(fd)
                continue
        reports.append(replay_folder(folder, fd, detected_by=detected_by))
    return reports


def read_spool_header(folder: Path) -> dict[str, object]:
    from mltrack.spool import _read_frames

    for record in _read_frames(folder / "log", []):
        return record if "header" in record else {}
    return {}
