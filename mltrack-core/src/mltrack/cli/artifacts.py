"""``mltrack artifacts list|upload``: a run's artifacts from the command line.

Uploads go file by file through the run's artifact store (MLflow's client: the tracking
server's proxy, S3, a local folder...). An upload of ``--progress-threshold`` or more shows a
rich progress bar on stderr, in bytes, advancing within a file too (see ``_bytes_read``).
"""

from __future__ import annotations

import os
import posixpath
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from mltrack.cli.output import _console, _table, echo_json
from mltrack.config.secrets import mask_secrets

# rich, pydantic and the run and store modules (`# lazy:`) are imported inside the commands, not for `mltrack --help`
# (benchmarks/import_time.py).

DEFAULT_PROGRESS_THRESHOLD = "50MB"
PROGRESS_THRESHOLD_ENV = "MLTRACK_UPLOAD_PROGRESS_THRESHOLD"
_POLL_S = 0.1


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """A number of bytes, or a number with a unit (50MB, 1.5GiB); 0 means always."""
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        return int(TypeAdapter(ByteSize).validate_python(value.strip()))
    except ValidationError:
        raise click.BadParameter(f"{value!r} is not a size: give bytes or a number with a unit, e.g. 50MB") from None


@dataclass(frozen=True)
class _Upload:
    """One local file and the artifact folder it goes to (None: the run's root)."""

    local: Path
    folder: str | None
    size: int


def _plan(path: Path, artifact_path: str | None) -> list[_Upload]:
    """The files under ``path`` with their artifact folders, as ``log_artifacts`` lays them out."""
    if path.is_file():
        return [_Upload(path, artifact_path, path.stat().st_size)]
    uploads = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel = Path(root).relative_to(path).as_posix()
        parts = [p for p in (artifact_path, "" if rel == "." else rel) if p]
        folder = posixpath.join(*parts) if parts else None
        for name in sorted(files):
            local = Path(root) / name
            uploads.append(_Upload(local, folder, local.stat().st_size))
    return uploads


def _bytes_read(path: Path) -> int | None:
    """How far this process has read ``path``: the largest offset among its open descriptors.

    MLflow's artifact stores take a path and read the file themselves, so the bytes sent are
    not observable through their API; on Linux the kernel shows each descriptor's offset in
    /proc/self/fdinfo. Elsewhere (None) the bar advances file by file.
    """
    target = str(path.resolve())
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    furthest = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != target:
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("pos:"):
                        furthest = max(furthest, int(line.split()[1]))
        except (OSError, ValueError):
            continue  # closed meanwhile
    return furthest


def _send(client: Any, run_id: str, upload: _Upload) -> None:
    client.log_artifact(run_id, str(upload.local), upload.folder)


def _send_with_progress(client: Any, run_id: str, uploads: list[_Upload]) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    total = sum(u.size for u in uploads)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("uploading", total=total)
        done = 0
        for upload in uploads:
            progress.update(task, description=upload.local.name)
            failure: list[BaseException] = []

            def send(upload: _Upload = upload, failure: list[BaseException] = failure) -> None:
                try:
                    _send(client, run_id, upload)
                except BaseException as exc:  # re-raised in the command's thread
                    failure.append(exc)

            # the upload runs beside the loop that reads how far it got
            sender = threading.Thread(target=send, name="mltrack-artifact-upload", daemon=True)
            sender.start()
            while sender.is_alive():
                sender.join(_POLL_S)
                read = _bytes_read(upload.local)
                if read is not None:
                    progress.update(task, completed=done + min(read, upload.size))
            if failure:
                raise failure[0]
            done += upload.size
            progress.update(task, completed=done)


def _human(size: int) -> str:
    from rich.filesize import decimal

    return str(decimal(size))


@click.group("artifacts")
def artifacts_group() -> None:
    """Work with a run's artifacts (in the store the run uses: local, S3 through the server...)."""


@artifacts_group.command("list")
@click.argument("run_id")
@click.argument("path", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def artifacts_list(run_id: str, path: str, as_json: bool) -> None:
    """List the artifacts of RUN_ID (an id or unique prefix) inside folder PATH (default the root)."""
    from mltrack.storage.store import get_store  # lazy: not on --help
    from mltrack.tracking.experiments import store_errors  # lazy: not on --help
    from mltrack.tracking.run_ids import resolve_run_id  # lazy: not on --help
    from mltrack.tracking.runs import get_run

    run_id = get_run(resolve_run_id(run_id)).info.run_id  # an unknown run is one line naming the store
    store = get_store()
    with store_errors(store):
        found = store.client.list_artifacts(run_id, path or None)
    rows: list[dict[str, Any]] = [{"path": f.path, "is_dir": f.is_dir, "size": f.file_size} for f in found]
    if as_json:
        echo_json(rows)
        return
    table = _table("path", "size")
    for row in rows:
        table.add_row(row["path"] + ("/" if row["is_dir"] else ""), "" if row["is_dir"] else _human(row["size"] or 0))
    _console().print(table)


@artifacts_group.command("upload")
@click.argument("run_id")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--artifact-path", default=None, help="Folder inside the run's artifacts (default: the root).")
@click.option(
    "--progress-threshold",
    default=DEFAULT_PROGRESS_THRESHOLD,
    envvar=PROGRESS_THRESHOLD_ENV,
    show_default=True,
    callback=_size,
    metavar="SIZE",
    help=f"Show a progress bar when the upload is at least this large (0: always). [env: {PROGRESS_THRESHOLD_ENV}]",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def artifacts_upload(
    run_id: str, path: Path, artifact_path: str | None, progress_threshold: int, as_json: bool
) -> None:
    """Upload the file or folder PATH into the artifacts of RUN_ID (an id or unique prefix).

    A folder keeps its layout under --artifact-path, as mltrack.log_artifacts does.
    """
    from mltrack.storage.store import get_store  # lazy: not on --help
    from mltrack.tracking.experiments import store_errors  # lazy: not on --help
    from mltrack.tracking.logging_api import _check_artifact_path
    from mltrack.tracking.runs import get_run

    _check_artifact_path("--artifact-path", artifact_path)
    from mltrack.tracking.run_ids import resolve_run_id  # lazy: not on --help

    run = get_run(resolve_run_id(run_id))
    run_id = run.info.run_id
    uploads = _plan(path, artifact_path)
    total = sum(u.size for u in uploads)
    store = get_store()
    with store_errors(store):
        if total >= progress_threshold and uploads:
            _send_with_progress(store.client, run_id, uploads)
        else:
            for upload in uploads:
                _send(store.client, run_id, upload)
    target = posixpath.join(str(run.info.artifact_uri), artifact_path or "")
    if as_json:
        echo_json(
            {
                "run_id": run_id,
                "artifact_uri": mask_secrets(target),
                "files": [posixpath.join(u.folder or "", u.local.name) for u in uploads],
                "bytes": total,
            }
        )
        return
    click.echo(f"uploaded {len(uploads)} file(s), {_human(total)}, to {mask_secrets(target)}")
