"""Replaying orphaned spools: what a dead process accepted but never sent.

Each spool is handled on its own: a spool that cannot be read, or that the store
refuses part of, never stops the others, a ``start_run`` or a later ``mltrack sync``.
Records the store refuses go to the quarantine; a damaged spool (no header naming its
store, or damage in the middle of its files) is moved to
``<data_dir>/quarantine/spools/`` with a ``report.json`` after whatever could be read
was delivered, so nothing is deleted while it may still hold data.

An offline run's spool (see ``mltrack.tracking.offline``) also creates its run: in the experiment it
names (created if missing), with its original start time, name and tags, and the tag
``mltrack.spool_id``, by which a replay that was interrupted and is run again finds the run
instead of creating another. Its artifacts are uploaded after its data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mltrack.errors import ExperimentNotFoundError, StoreError
from mltrack.storage.delivery import REFUSED, Item, Quarantine, classify, deliver_isolating, describe
from mltrack.storage.records import Metric, Param, Tag
from mltrack.storage.spool import (
    REFUSED_TAG,
    SPOOL_ID_TAG,
    WRITER_LET_GO_S,
    SpoolContents,
    quarantine_root,
    read_spool,
    read_spool_header,
    spool_folders,
    try_lock,
)
from mltrack.storage.store import get_store
from mltrack.storage.writer import _items_in_parts
from mltrack.tracking.experiments import get_experiment_by_id, get_or_create_experiment_id
from mltrack.tracking.offline import ARTIFACTS, find_synced_run, is_offline_run_id, offline_run_id, spool_id_of

logger = logging.getLogger("mltrack.replay")


@dataclass
class ReplayReport:
    path: Path
    run_id: str
    tracking_uri: str | None
    metrics: int = 0
    params: int = 0
    tags: int = 0
    refused: int = 0
    status_set: str | None = None
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    quarantined: str | None = None  # where the spool was moved, if it was damaged
    offline_run_id: str | None = None  # the id an offline run had before it was synced
    created: bool = False  # this replay created the run (from an offline run's spool)
    experiment_id: str | None = None  # where an offline run's run was created or found
    artifacts: int = 0  # files of an offline run uploaded

    @property
    def ok(self) -> bool:
        return self.error is None


def live_rank_exists(folder: Path) -> bool:
    """Whether another process still holds a spool of the same run (a live DDP rank)."""
    for sibling in folder.parent.iterdir():
        if sibling == folder or not sibling.is_dir():
            continue
        fd = try_lock(sibling, wait_s=None)  # a writer still busy with a dead one: not live
        if fd is None and (sibling / "lock").exists():
            return True
        if fd is not None:
            os.close(fd)
    return False


class _Damaged(Exception):
    """The spool cannot be delivered as it is; it goes to the quarantine."""


class _NotNow(Exception):
    """The spool is fine but cannot be delivered yet (its experiment is deleted): it is kept."""


def _find_started_run(store: Any, contents: SpoolContents) -> str | None:
    """The run a spool made before ``create_run`` belongs to, found by its spool id."""
    spool_id = contents.header.get("spool_id")
    experiment_id = contents.header.get("experiment_id")
    if not isinstance(spool_id, str) or not spool_id.isalnum() or not isinstance(experiment_id, str):
        raise _Damaged("the spool was made before its run was created but names no spool id or experiment")
    runs = store.client.search_runs(
        [experiment_id], filter_string=f"tags.`{SPOOL_ID_TAG}` = '{spool_id}'", max_results=1
    )
    return runs[0].info.run_id if runs else None


def replay_folder(folder: Path, lock_fd: int, *, detected_by: str) -> ReplayReport:
    """Send a locked orphaned spool to its store, settle the run's status, remove it."""

    report = ReplayReport(folder, folder.parent.name, None)
    try:
        contents = read_spool(folder)
        report.problems = list(contents.problems)
        uri = contents.header.get("tracking_uri")
        report.tracking_uri = uri if isinstance(uri, str) else None
        if not report.tracking_uri:
            raise _Damaged("the spool has no readable header naming its store")
        store = get_store(report.tracking_uri)
        offline = contents.header.get("offline")
        run_id = contents.run_id
        if offline is not None:
            run_id = _offline_run(store, contents, report)
        elif run_id is None:
            run_id = _find_started_run(store, contents)
            if run_id is None:  # the process died before the store created its run
                report.run_id = ""
                _remove(folder, lock_fd)
                return report
        report.run_id = run_id
        _deliver(store, run_id, contents, report, folder)
        if offline is not None:
            _upload_artifacts(store, run_id, folder, report)
        _settle_status(store, run_id, contents, report, folder, detected_by)
    except _NotNow as exc:
        report.error = str(exc)
        os.close(lock_fd)
        return report
    except _Damaged as exc:
        report.problems.append(str(exc))
        return _quarantine_spool(folder, lock_fd, report, str(exc))
    except Exception as exc:
        if classify(exc) != REFUSED and _from_store(exc):
            # the store is down or failing: nothing is wrong with the spool, try again later
            report.error = describe(exc)
            os.close(lock_fd)
            return report
        return _quarantine_spool(folder, lock_fd, report, f"replay failed: {describe(exc)}")
    damage = [p for p in report.problems if "truncated record" not in p]
    if damage:  # delivered what could be read; keep the files, they may hold more
        return _quarantine_spool(folder, lock_fd, report, "damaged: " + "; ".join(damage[:3]))
    for problem in report.problems:
        logger.warning("mltrack replay: %s", problem)
    _remove(folder, lock_fd)
    return report


_STORE_MODULES = ("mlflow", "requests", "urllib3", "sqlalchemy", "psycopg2", "sqlite3", "http")


def _from_store(exc: BaseException) -> bool:
    """Whether ``exc`` came from talking to the store (rather than from the spool's content)."""

    link: BaseException | None = exc
    for _ in range(10):
        if link is None:
            return False
        if isinstance(link, (OSError, StoreError)) or type(link).__module__.split(".")[0] in _STORE_MODULES:
            return True
        link = link.__cause__ or link.__context__
    return False


def _offline_run(store: Any, contents: SpoolContents, report: ReplayReport) -> str:
    """The run of an offline spool: the one a previous replay created, else a new one."""

    header = contents.header
    offline, spool_id = header["offline"], header.get("spool_id")
    if not isinstance(offline, dict) or not isinstance(spool_id, str) or not spool_id.isalnum():
        raise _Damaged("the offline run's spool names no spool id or run details")
    report.offline_run_id = offline_run_id(spool_id)
    tags, name, experiment_id = offline.get("tags"), offline.get("experiment"), header.get("experiment_id")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _Damaged("the offline run's tags are unreadable")
    try:
        if isinstance(name, str):
            experiment_id = get_or_create_experiment_id(name, store)
        elif isinstance(experiment_id, str):
            experiment_id = str(get_experiment_by_id(experiment_id, store).experiment_id)
        else:
            raise _Damaged("the offline run's spool names no experiment")
    except ExperimentNotFoundError as exc:
        raise _NotNow(f"offline run {report.offline_run_id}: {exc}") from None
    report.experiment_id = experiment_id
    found = find_synced_run(store.client, spool_id, [experiment_id])
    if found is not None:  # created by a replay that did not get to remove the spool
        return str(found.info.run_id)
    tags = {**tags, SPOOL_ID_TAG: spool_id}
    parent = tags.get(PARENT_TAG)
    if is_offline_run_id(parent):
        # a child of an offline run: its parent, started earlier, was replayed first
        synced = find_synced_run(store.client, spool_id_of(parent), [experiment_id]) or find_synced_run(
            store.client, spool_id_of(parent)
        )
        if synced is not None:
            tags[PARENT_TAG] = synced.info.run_id
        else:
            logger.warning("mltrack replay: the parent %s of offline run %s is not synced", parent, spool_id)
    start = offline.get("start_time")
    created = store.client.create_run(
        experiment_id,
        start_time=start if isinstance(start, int) else None,
        tags=tags,
        run_name=offline.get("run_name") if isinstance(offline.get("run_name"), str) else None,
    )
    report.created = True
    return str(created.info.run_id)


PARENT_TAG = "mlflow.parentRunId"


def _upload_artifacts(store: Any, run_id: str, folder: Path, report: ReplayReport) -> None:
    """Upload what an offline run saved as artifacts (again, whole, if a replay is repeated)."""
    artifacts = folder / ARTIFACTS
    files = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.is_dir() else []
    if files:
        store.client.log_artifacts(run_id, str(artifacts))
    report.artifacts = len(files)


def _deliver(store: Any, run_id: str, contents: SpoolContents, report: ReplayReport, folder: Path) -> None:
    items = (
        [Item(Param(*p)) for p in contents.params]
        + [Item(Tag(*t)) for t in contents.tags]
        + [Item(Metric(*m)) for m in contents.metrics]
    )
    quarantine = Quarantine(quarantine_root(folder.parent.parent.parent), run_id)
    for part in _items_in_parts(items, run_id):
        refused = deliver_isolating(store.write, run_id, part, lambda: bool(store.probe(run_id)))
        quarantine.add(refused)
        report.refused += len(refused)
    report.metrics, report.params, report.tags = len(contents.metrics), len(contents.params), len(contents.tags)
    if report.refused:
        report.problems.append(quarantine.summary())
        try:
            store.client.set_tag(run_id, REFUSED_TAG, quarantine.summary()[:7900])
        except Exception as exc:
            report.problems.append(f"could not tag the run with what was refused: {describe(exc)}")


def _settle_status(
    store: Any, run_id: str, contents: SpoolContents, report: ReplayReport, folder: Path, detected_by: str
) -> None:
    try:
        run = store.client.get_run(run_id)
    except Exception as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            report.problems.append(f"run {run_id} no longer exists in the store")
            return
        raise
    if run.info.status != "RUNNING":
        return
    offline = contents.header.get("offline")
    if isinstance(offline, dict) and not offline.get("main") and _main_spool_left(folder):
        return  # a forked worker's spool of an offline run: the run's own spool settles it
    if contents.end is not None:
        store.client.set_terminated(run_id, contents.end["end"], end_time=contents.end.get("time"))
        report.status_set = str(contents.end["end"])
    elif not live_rank_exists(folder):
        pid, host = contents.header.get("pid"), contents.header.get("host")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for key, value in (
            ("mltrack.killed.detected_by", detected_by),
            ("mltrack.killed.detected_at", now),
            ("mltrack.killed.reason", f"process {pid} on {host} stopped without ending the run"),
        ):
            store.client.set_tag(run_id, key, value)
        last = max((m[2] for m in contents.metrics), default=None)
        if last is None and isinstance(offline, dict) and isinstance(offline.get("start_time"), int):
            last = offline["start_time"]  # an offline run may be synced days later: not "now"
        store.client.set_terminated(run_id, "KILLED", end_time=last or int(time.time() * 1000))
        report.status_set = "KILLED"


def _main_spool_left(folder: Path) -> bool:
    """Whether the offline run's own spool (not a forked worker's) is still to be replayed."""
    for sibling in folder.parent.iterdir():
        if sibling != folder and sibling.is_dir():
            offline = read_spool_header(sibling).get("offline")
            if isinstance(offline, dict) and offline.get("main"):
                return True
    return False


def _remove(folder: Path, lock_fd: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass
    os.close(lock_fd)


def _quarantine_spool(folder: Path, lock_fd: int, report: ReplayReport, reason: str) -> ReplayReport:
    """Move a spool that cannot be fully replayed out of the way, with a report."""
    data_dir = folder.parent.parent.parent
    target = quarantine_root(data_dir) / "spools" / f"{folder.parent.name}-{folder.name}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, target)
        (target / "report.json").write_text(
            json.dumps(
                {
                    "reason": reason,
                    "from": str(folder),
                    "run_id": report.run_id,
                    "tracking_uri": report.tracking_uri,
                    "delivered": {"metrics": report.metrics, "params": report.params, "tags": report.tags},
                    "problems": report.problems,
                    "moved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
                indent=2,
                ensure_ascii=True,
            )
        )
    except OSError as exc:
        report.error = f"damaged spool ({reason}) could not be moved to {target}: {exc}"
        os.close(lock_fd)
        return report
    try:
        folder.parent.rmdir()
    except OSError:
        pass
    os.close(lock_fd)
    report.quarantined = str(target)
    logger.warning("mltrack replay: spool %s quarantined in %s: %s", folder, target, reason)
    return report


def _created_ms(folder: Path) -> int:
    created = read_spool_header(folder).get("created_ms")
    return created if isinstance(created, int) else 0


def replay_orphans(
    root: Path, *, tracking_uri: str | None = None, detected_by: str, writer_wait_s: float = WRITER_LET_GO_S
) -> list[ReplayReport]:
    """Replay every orphaned spool under ``root`` (only those of ``tracking_uri`` if given).

    A spool whose process died but whose writer process has not let go of it yet is waited
    for up to ``writer_wait_s`` (a loaded machine may take a few cycles), then left."""
    reports: list[ReplayReport] = []
    # oldest first: an offline parent run is created before its children look it up
    for folder in sorted(spool_folders(root), key=_created_ms):
        try:
            fd = try_lock(folder, wait_s=writer_wait_s)
        except OSError as exc:
            reports.append(ReplayReport(folder, folder.parent.name, None, error=f"cannot lock: {exc}"))
            continue
        if fd is None:
            continue  # its process is alive, or another replayer has it
        if tracking_uri is not None and read_spool_header(folder).get("tracking_uri") != tracking_uri:
            os.close(fd)
            continue
        reports.append(replay_folder(folder, fd, detected_by=detected_by))
    return reports
