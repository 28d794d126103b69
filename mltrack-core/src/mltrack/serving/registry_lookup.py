"""A registered model version's files, found and fetched without MLflow's client.

Importing MLflow and opening its store is about 3 s of a server's cold start, for what
is one row of one table. So a sqlite registry is read with ``sqlite3`` straight from
MLflow's tables (``model_versions``, ``registered_model_aliases``), and an MLflow server
is asked over its REST API (``model-versions/get``, ``registered-models/alias`` or
``registered-models/get``, then ``model-versions/get-download-uri``). The files are copied
from a local artifact folder or downloaded through the server's artifact proxy
(``mlflow-artifacts:``) into MLTrack's model cache, where ``mltrack.models.registry`` keeps them
(same folder, same record), so either finds what the other fetched.

Everything else goes to MLflow: another database, a cloud artifact store, Databricks,
workspaces, credentials other than a token or a user and password, and every answer that
is not a plain success (not found, refused, unreachable). MLflow's client then behaves
and words its errors exactly as it always has.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# mlflow, the model registry and the settings (pydantic) are imported inside the functions that need them: this module
# exists to find a model without importing mlflow (see above).

logger = logging.getLogger("mltrack.serving")

#: MLflow's stage of a deleted version that its store still keeps a row of
DELETED_STAGE = "Deleted_Internal"
DEFAULT_WORKSPACE = "default"

#: settings of MLflow's HTTP client that this module does not reproduce: any set, MLflow asks
_MLFLOW_ONLY_ENV = (
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_WORKSPACE",
    "MLFLOW_ENABLE_WORKSPACES",
)


class Unanswered(Exception):
    """This module cannot answer; MLflow's client must (the message says why, for the debug log)."""


@dataclass(frozen=True)
class RegistryVersion:
    """One model version as the registry records it."""

    name: str
    version: str
    source: str
    created: int  #: creation time, ms since the epoch
    download_uri: str  #: where its files are (MLflow's ``get_model_version_download_uri``)


@dataclass(frozen=True)
class RegisteredFiles:
    """A registered model version's files on this machine."""

    path: Path
    name: str
    version: str


def registered_files(name: str, version: int | str) -> RegisteredFiles | None:
    """The local folder of model ``name`` at ``version`` (a number, "latest" or an alias),
    fetched into the model cache if need be; None when MLflow's client must be asked."""
    from mltrack.config.settings import get_settings

    settings = get_settings()
    tracking_uri = settings.resolved_tracking_uri()
    registry_uri = settings.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri
    try:
        wanted = _wanted(version)
        if _mlflow_registry_set_in_process():
            raise Unanswered("mlflow.set_registry_uri() was called in this process")
        found = find_version(registry_uri, name, wanted)
        path = _cached_or_fetched(found, tracking_uri, Path(settings.data_dir))
    except Unanswered as why:
        logger.debug("mltrack serve: asking MLflow's client for %r version %r: %s", name, version, why)
        return None
    return RegisteredFiles(path, found.name, found.version)


def _wanted(version: int | str) -> int | str:
    """A version number, "latest", or an alias without its "@" (others: MLflow's client refuses them)."""
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise Unanswered(f"version {version!r} is not a number, 'latest' or an alias")
    if isinstance(version, str) and version.isdigit():
        return int(version)
    if isinstance(version, str) and version != "latest":
        return version.lstrip("@")
    return version


def _mlflow_registry_set_in_process() -> bool:
    utils = sys.modules.get("mlflow.tracking._model_registry.utils")
    return utils is not None and getattr(utils, "_registry_uri", None) is not None


def find_version(registry_uri: str, name: str, version: int | str) -> RegistryVersion:
    """The version of ``name`` meant by ``version`` (a number, "latest", or an alias without
    "@"), read from a sqlite registry or asked of an MLflow server. Raises ``Unanswered``."""
    if not isinstance(name, str) or not name:
        raise Unanswered("no model name")
    if any(os.environ.get(variable) for variable in _MLFLOW_ONLY_ENV):
        raise Unanswered("MLflow client settings this lookup does not reproduce are set")
    scheme = urllib.parse.urlsplit(registry_uri).scheme.lower()
    if scheme == "sqlite":
        return _sqlite_version(registry_uri, name, version)
    if scheme in ("http", "https"):
        return _rest_version(registry_uri, name, version)
    raise Unanswered(f"registry {scheme or registry_uri!r} is read through MLflow")


# -- sqlite ----------------------------------------------------------------------------------------


def _sqlite_path(uri: str) -> str:
    """The database file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI, as
    SQLAlchemy (so MLflow) reads it."""
    rest = uri.split("?", 1)[0]
    if not rest.lower().startswith("sqlite:///") or rest[len("sqlite:///") :] in ("", ":memory:"):
        raise Unanswered(f"{uri!r} is not a sqlite database file")
    return rest[len("sqlite:///") :]


_VERSION_COLUMNS = "mv.name, mv.version, mv.source, mv.creation_time, {storage}"


def _sqlite_version(uri: str, name: str, version: int | str) -> RegistryVersion:
    path = _sqlite_path(uri)
    if not Path(path).is_file():
        raise Unanswered(f"no database at {path}")
    database = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
    try:
        # read-only, and never wait long: MLflow's own store takes over if the file is busy
        with contextlib.closing(sqlite3.connect(database, uri=True, timeout=5)) as connection:
            return _query_version(connection, name, version)
    except sqlite3.Error as exc:  # an older or newer schema than this reads, a locked file
        raise Unanswered(f"sqlite: {exc}") from None


def _query_version(connection: sqlite3.Connection, name: str, version: int | str) -> RegistryVersion:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(model_versions)")}
    if not {"name", "version", "source", "creation_time", "current_stage"} <= columns:
        raise Unanswered("the model_versions table is not one this lookup knows")
    storage = "mv.storage_location" if "storage_location" in columns else "NULL"
    select = f"SELECT {_VERSION_COLUMNS.format(storage=storage)} FROM model_versions mv"
    # MLflow without workspaces serves only the default one
    where = "mv.name = ? AND mv.current_stage != ?"
    args: list[Any] = [name, DELETED_STAGE]
    if "workspace" in columns:
        where += " AND mv.workspace = ?"
        args.append(DEFAULT_WORKSPACE)
    if isinstance(version, int):
        query = f"{select} WHERE {where} AND mv.version = ?"
        args.append(version)
    elif version == "latest":
        query = f"{select} WHERE {where} ORDER BY mv.version DESC LIMIT 1"
    else:
        alias_where = "a.name = mv.name AND a.version = mv.version AND a.alias = ?"
        if "workspace" in columns:
            alias_where += " AND a.workspace = mv.workspace"
        query = f"{select} JOIN registered_model_aliases a ON {alias_where} WHERE {where}"
        args.insert(0, version)
    row = connection.execute(query, args).fetchone()
    if row is None:
        raise Unanswered(f"no version {version!r} of {name!r} in the sqlite registry")
    found_name, number, source, created, storage_location = row
    return RegistryVersion(
        name=str(found_name),
        version=str(number),
        source=str(source or ""),
        created=int(created or 0),
        download_uri=str(storage_location or source or ""),
    )


# -- an MLflow server --------------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    """The credentials MLflow's client would send (a token, or a user and password)."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")}
    return {}


def _timeout() -> float:
    try:
        return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120"))
    except ValueError:
        return 120.0


def _get(url: str, into: Path | None = None) -> bytes:
    """GET ``url``: its body, or (``into``) an empty answer after streaming the body into that file."""
    request = urllib.request.Request(url, headers=_headers())
    try:
        with urllib.request.urlopen(request, timeout=_timeout()) as response:
            if into is None:
                body: bytes = response.read()
                return body
            with into.open("wb") as out:
                shutil.copyfileobj(response, out, 1024 * 1024)
            return b""
    except urllib.error.HTTPError as exc:
        raise Unanswered(f"GET {url.split('?')[0]} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unanswered(f"GET {url.split('?')[0]} failed: {getattr(exc, 'reason', exc)}") from None


def _get_json(url: str) -> dict[str, Any]:
    try:
        document = json.loads(_get(url))
    except ValueError:
        raise Unanswered(f"GET {url.split('?')[0]} did not answer JSON") from None
    if not isinstance(document, dict):
        raise Unanswered(f"GET {url.split('?')[0]} answered {type(document).__name__}, not an object")
    return document


def _api(base: str, endpoint: str, **query: str) -> dict[str, Any]:
    return _get_json(f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}")


def _rest_version(uri: str, name: str, version: int | str) -> RegistryVersion:
    base = uri.rstrip("/")
    if isinstance(version, int):
        record = _api(base, "model-versions/get", name=name, version=str(version)).get("model_version")
    elif version == "latest":
        model = _api(base, "registered-models/get", name=name).get("registered_model") or {}
        # the newest version of each stage: the newest of those is the newest of all
        latest = model.get("latest_versions") or []
        record = max(latest, key=lambda v: int(v.get("version", 0)), default=None)
    else:
        record = _api(base, "registered-models/alias", name=name, alias=version).get("model_version")
    if not isinstance(record, dict) or "version" not in record:
        raise Unanswered(f"the server has no version {version!r} of {name!r}")
    number = str(record["version"])
    found_name = str(record.get("name") or name)
    download = _api(base, "model-versions/get-download-uri", name=found_name, version=number)
    download_uri = download.get("artifact_uri")
    if not isinstance(download_uri, str) or not download_uri:
        raise Unanswered("get-download-uri gave no artifact_uri")
    return RegistryVersion(
        name=found_name,
        version=number,
        source=str(record.get("source") or ""),
        created=int(record.get("creation_timestamp") or 0),
        download_uri=download_uri,
    )


# -- the files -------------------------------------------------------------------------------------


def store_key(tracking_uri: str) -> str:
    """The model cache's name for a store (a hash: a URI may hold a password, and model folders get shipped)."""
    return hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]


def cache_record(found: RegistryVersion, tracking_uri: str) -> dict[str, Any]:
    """What ``mltrack.models.registry`` records beside a cached version (compared, key for key, before reuse)."""
    return {
        "name": found.name,
        "version": found.version,
        "source": found.source,
        "created": found.created,
        "store": store_key(tracking_uri),
    }


def _cached_or_fetched(found: RegistryVersion, tracking_uri: str, data_dir: Path) -> Path:
    """The version's folder in the model cache, fetched first unless the cache holds these very files."""
    from mltrack.models.registry import CACHE_RECORD

    target = data_dir / "models" / store_key(tracking_uri) / found.name / found.version
    record = cache_record(found, tracking_uri)
    try:
        if (target / "MLmodel").is_file() and json.loads((target / CACHE_RECORD).read_text()) == record:
            return target
    except (OSError, ValueError):
        pass  # no or unreadable record: fetch again
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        local = _fetch(found.download_uri, Path(tmp) / "model", tracking_uri)
        if not (local / "MLmodel").is_file():
            raise Unanswered(f"{found.download_uri} holds no MLmodel file")
        (local / CACHE_RECORD).write_text(json.dumps(record))  # last: its presence says the files are whole
        if target.exists():  # stale files of another model under this name and number
            shutil.rmtree(target)
        local.rename(target)
    return target


def _fetch(uri: str, destination: Path, tracking_uri: str) -> Path:
    """The files at artifact ``uri`` copied into ``destination`` (which does not exist yet)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("", "file") and not parts.netloc:
        folder = Path(urllib.parse.unquote(parts.path) if parts.scheme else uri)
        if not folder.is_dir():
            raise Unanswered(f"artifact folder {folder} is not on this machine")
        shutil.copytree(folder, destination)
        return destination
    if parts.scheme == "mlflow-artifacts" and not parts.netloc:
        server = urllib.parse.urlsplit(tracking_uri)
        if server.scheme not in ("http", "https"):
            raise Unanswered("mlflow-artifacts: URI without a tracking server")
        base = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts"
        _download_proxied(base, parts.path.strip("/"), destination)
        return destination
    return _fetch_with_mlflow(uri, destination, tracking_uri)


def _download_proxied(base: str, path: str, destination: Path) -> None:
    """Download the folder ``path`` from an MLflow server's artifact proxy, file by file."""
    destination.mkdir(parents=True)
    listing = _get_json(f"{base}?{urllib.parse.urlencode({'path': path})}")
    for entry in listing.get("files", []):
        child = str(entry["path"]).rsplit("/", 1)[-1]
        if child in ("", ".", ".."):
            raise Unanswered(f"artifact listing of {path} names {entry['path']!r}")
        child_path = f"{path}/{child}" if path else child
        if entry.get("is_dir"):
            _download_proxied(base, child_path, destination / child)
        else:
            _get(f"{base}/{urllib.parse.quote(child_path)}", into=destination / child)


def _fetch_with_mlflow(uri: str, destination: Path, tracking_uri: str) -> Path:
    """A store this module does not read (S3, GCS, ...): MLflow downloads, having skipped only the lookup."""
    import mlflow.artifacts

    destination.mkdir(parents=True)
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(destination), tracking_uri=tracking_uri
        )
    except Exception as exc:
        raise Unanswered(f"downloading {uri} failed: {exc}") from None
    return Path(local)
