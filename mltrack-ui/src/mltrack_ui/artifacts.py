"""A run's artifacts: listing, download and preview, never outside the run's artifact root.

A requested path is checked as text first (relative, no ``..``, no backslash or NUL), and
on a local artifact store again after resolving symlinks, so neither ``../../etc/passwd``
nor a symlink planted in the artifact folder reaches another file. Remote artifact stores
are read through MLflow's own download, which is scoped to the run by construction. A UI that
reads the database directly reads proxied artifacts (``mlflow-artifacts:/``) through the
tracking server named by its ``artifacts_server`` setting.
"""

from __future__ import annotations

import mimetypes
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mltrack import MLTrackError, StoreError
from mltrack.extend import MlflowStore, mask_secrets

PREVIEW_BYTES = 512 * 1024
# Images a browser may show inline. SVG is excluded on purpose: it can carry script.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
TEXT_SUFFIXES = frozenset(
    {".txt", ".log", ".md", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".py", ".cfg", ".ini", ".svg", ".html", ".xml"}
)
JSON_SUFFIXES = frozenset({".json", ".jsonl"})
MLMODEL_NAMES = frozenset({"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"})


class ArtifactPathError(MLTrackError):
    """An artifact path that points outside the run's artifact root."""


class ArtifactNotFoundError(MLTrackError, LookupError):
    """No artifact at the requested path."""


def checked_path(path: str) -> str:
    """``path`` as a clean relative POSIX path, or ``ArtifactPathError``."""
    if "\x00" in path or "\\" in path:
        raise ArtifactPathError(f"artifact path {path!r} contains a NUL or backslash")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ArtifactPathError(f"artifact path {path!r} is absolute; give a path inside the run's artifacts")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(f"artifact path {path!r} leaves the run's artifact root")
    return posixpath.join(*parts) if parts else ""


def local_root(artifact_uri: str) -> Path | None:
    """The folder of a ``file:`` (or plain path) artifact URI; None for remote stores."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and artifact_uri[1] == ":"):
        return Path(artifact_uri)
    return None


@dataclass
class ArtifactFile:
    """A file ready to send: where it is on disk, and what to delete afterwards."""

    path: Path
    media_type: str
    inline: bool
    cleanup: Path | None = None

    def close(self) -> None:
        if self.cleanup is not None:
            shutil.rmtree(self.cleanup, ignore_errors=True)


class ArtifactsUnreachableError(StoreError):
    """The run's artifacts are behind a tracking server's proxy that this UI does not talk to."""


@dataclass(frozen=True)
class RunArtifacts:
    """Where a run's artifacts are, and the tracking URI that resolves that location."""

    uri: str
    via: str


def _run_artifacts(store: MlflowStore, run_id: str, artifacts_server: str | None) -> RunArtifacts:
    uri = str(store.client.get_run(run_id).info.artifact_uri)
    parsed = urlparse(uri)
    # ``mlflow-artifacts:/...`` (no host) is relative to the tracking server's proxy: a UI that
    # reads the database directly (e.g. a read replica) sends it to the configured server.
    if parsed.scheme == "mlflow-artifacts" and not parsed.netloc and not store.tracking_uri.startswith("http"):
        if artifacts_server:
            return RunArtifacts(uri, artifacts_server)
        raise ArtifactsUnreachableError(
            f"run {run_id} keeps its artifacts behind the tracking server's proxy ({uri}), and this UI reads "
            f"the database {mask_secrets(store.tracking_uri)} directly",
            hint="set [tool.mltrack.plugins.ui] artifacts_server (MLTRACK_PLUGINS__UI__ARTIFACTS_SERVER) to "
            "http://<tracking server>, or start the UI with --tracking-uri http://<tracking server>",
        )
    return RunArtifacts(uri, store.tracking_uri)


def list_artifacts(
    store: MlflowStore, run_id: str, path: str = "", artifacts_server: str | None = None
) -> list[dict[str, Any]]:
    rel = checked_path(path)
    where = _run_artifacts(store, run_id, artifacts_server)
    root = local_root(where.uri)
    if root is not None:
        _inside(root, rel)
    if where.via == store.tracking_uri:
        client = store.client
    else:
        from mlflow import MlflowClient

        client = MlflowClient(where.via)
    return [
        {"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size}
        for f in client.list_artifacts(run_id, rel or None)
    ]


def _inside(root: Path, rel: str) -> Path:
    resolved_root = root.resolve()
    target = (root / rel).resolve()
    if target != resolved_root and resolved_root not in target.parents:
        raise ArtifactPathError(f"artifact path {rel!r} resolves outside the run's artifact root")
    return target


def media_type_of(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def open_artifact(store: MlflowStore, run_id: str, path: str, artifacts_server: str | None = None) -> ArtifactFile:
    """A single artifact file of the run, local or downloaded to a temporary folder."""
    rel = checked_path(path)
    if not rel:
        raise ArtifactPathError("name an artifact file, not the artifact root")
    media_type = media_type_of(rel)
    inline = media_type in INLINE_IMAGE_TYPES
    where = _run_artifacts(store, run_id, artifacts_server)
    root = local_root(where.uri)
    if root is not None:
        target = _inside(root, rel)
        if not target.is_file():
            raise ArtifactNotFoundError(f"run {run_id} has no artifact file {rel!r}")
        return ArtifactFile(target, media_type, inline)
    from mlflow.artifacts import download_artifacts

    folder = Path(tempfile.mkdtemp(prefix="mltrack-ui-"))
    try:
        local = Path(download_artifacts(run_id=run_id, artifact_path=rel, dst_path=str(folder), tracking_uri=where.via))
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactNotFoundError(f"run {run_id} has no artifact file {rel!r}: {exc}") from exc
    if not local.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        raise ArtifactNotFoundError(f"{rel!r} is a folder of run {run_id}, not a file")
    return ArtifactFile(local, media_type, inline, cleanup=folder)


def preview(store: MlflowStore, run_id: str, path: str, artifacts_server: str | None = None) -> dict[str, Any]:
    """What the artifact viewer shows: text (first 512 KiB), JSON text, or an image to load."""
    artifact = open_artifact(store, run_id, path, artifacts_server)
    try:
        size = artifact.path.stat().st_size
        name = artifact.path.name
        suffix = artifact.path.suffix.lower()
        if artifact.inline:
            return {"path": path, "kind": "image", "size": size, "media_type": artifact.media_type}
        if suffix in JSON_SUFFIXES or suffix in TEXT_SUFFIXES or name in MLMODEL_NAMES:
            kind = "json" if suffix in JSON_SUFFIXES else "text"
        else:
            kind = "text" if _looks_like_text(artifact.path) else "binary"
        if kind == "binary":
            return {"path": path, "kind": "binary", "size": size, "media_type": artifact.media_type}
        with artifact.path.open("rb") as handle:
            raw = handle.read(PREVIEW_BYTES)
        return {
            "path": path,
            "kind": kind,
            "size": size,
            "media_type": artifact.media_type,
            "content": raw.decode("utf-8", errors="replace"),
            "truncated": size > PREVIEW_BYTES,
        }
    finally:
        artifact.close()


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut at the end of the sample
    return True
