"""``model.tar.gz``: an MLflow model directory the way SageMaker wants it.

SageMaker downloads ``ModelDataUrl`` and unpacks it into ``/opt/ml/model``, so the files of the
model directory (``MLmodel``, ``requirements.txt``, ...) sit at the root of the archive. The
archive is reproducible (sorted entries, no owners, fixed times), so packaging the same model
version twice gives the same bytes and the same SHA-256, and an upload can be skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

from mltrack import DeploymentError

ARCHIVE_NAME = "model.tar.gz"
#: a fixed timestamp (2000-01-01) for every entry: reproducible, and not 0 which some tools reject
FIXED_MTIME = 946684800


@dataclass(frozen=True)
class PackagedModel:
    path: Path
    sha256: str
    size: int


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = FIXED_MTIME
    info.mode = 0o755 if info.isdir() or info.mode & 0o100 else 0o644
    return info


def package_model(model_dir: Path, dest_dir: Path) -> PackagedModel:
    """Write ``dest_dir/model.tar.gz`` holding the files of ``model_dir`` at its root."""
    if not (model_dir / "MLmodel").is_file():
        raise DeploymentError(f"{model_dir} is not an MLflow model directory (no MLmodel file)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / ARCHIVE_NAME
    entries = sorted(p for p in model_dir.rglob("*") if not p.is_symlink() or p.resolve().exists())
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=FIXED_MTIME) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in entries:
            name = path.relative_to(model_dir).as_posix()
            # links are stored as the files they point at: /opt/ml/model must be self-contained
            archive.add(path.resolve(), arcname=name, recursive=False, filter=_normalised)
    digest = hashlib.sha256()
    with target.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return PackagedModel(path=target, sha256=digest.hexdigest(), size=target.stat().st_size)


def unpack_model(archive: Path, dest_dir: Path) -> Path:
    """Unpack ``archive`` into ``dest_dir`` as SageMaker does into ``/opt/ml/model``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest_dir, filter="data")  # refuses absolute paths and links out of dest_dir
        else:  # Python before 3.10.12 / 3.11.4: our own archives only hold plain relative names
            tar.extractall(dest_dir)
    return dest_dir
