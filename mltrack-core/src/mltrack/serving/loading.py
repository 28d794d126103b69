"""Finding and loading the model a server serves.

A model is named as a registered model (``churn``, with a version, ``"latest"`` or an
alias), a ``models:/`` or ``runs:/`` URI, or a local MLflow model directory (what the
SageMaker container finds at ``/opt/ml/model``). Locating (the store, a download) and
loading (the framework) are separate steps so that a multi-worker server locates once in
its parent and every worker loads the same local directory.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mltrack.errors import InvalidInputError, MLTrackError
from mltrack.models.environment import model_environment, running_python
from mltrack.models.flavours import Flavour, Predictor
from mltrack.storage.store import get_store

# mlflow, yaml and the registry and settings are imported inside functions so that a multi-worker server's parent
# loads only what locating needs (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.serving")


@dataclass
class ServedModel:
    """A loaded model, ready to serve.

    ``batchable`` is the flavour's promise that the model maps rows to rows (one output
    row per input row, independently), so the rows of concurrent requests can be
    predicted in one call; the app micro-batches only such models.
    """

    name: str | None
    version: str | None
    flavour: str
    signature: Any
    predictor: Any  #: has ``predict(inputs, params=None)``
    path: Path
    batchable: bool

    def describe(self) -> str:
        """How logs and the CLI name it: ``model 'churn' v3 (sklearn)``."""
        if self.name is not None:
            where = f"model {self.name!r}" + (f" v{self.version}" if self.version is not None else "")
        else:
            where = f"model at {self.path}"
        return f"{where} ({self.flavour})"


@dataclass(frozen=True)
class ModelLocation:
    """A model directory on this machine and what it was called in the registry."""

    path: Path
    name: str | None = None
    version: str | None = None


_URI_VERSION = re.compile(r"^(?P<name>.+?)(?:/(?P<version>\d+|latest)|@(?P<alias>[A-Za-z][\w\-]*))?$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{16,}$")


def _local_directory(model: str) -> Path | None:
    """The directory ``model`` names, if it names one (a path or a ``file:`` URI)."""
    if model.startswith("file:"):
        path = Path(unquote(urlparse(model).path))
    else:
        path = Path(model).expanduser()
        looks_like_path = model.startswith(("/", "./", "../", "~", ".\\")) or model in (".", "..")
        if not path.is_dir() and not looks_like_path:
            return None
    if not path.is_dir():
        raise InvalidInputError(
            "model",
            model,
            "is not a directory",
            hint="pass an MLflow model directory, a registered model name, or a models:/ or runs:/ URI",
        )
    if not (path / "MLmodel").is_file():
        raise InvalidInputError(
            "model",
            model,
            "is a directory without an MLmodel file, so not an MLflow model",
            hint="point at the folder that holds MLmodel (e.g. the 'model' folder a run logged)",
        )
    return path.resolve()


def _download_uri(uri: str, cache_key: str) -> Path:
    """Download an artifact URI (``runs:/``, a logged model) once into the data dir."""
    import mlflow.artifacts

    from mltrack.config.settings import get_settings

    target = Path(get_settings().data_dir) / "models" / cache_key
    if (target / "MLmodel").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=uri, dst_path=tmp, tracking_uri=get_store().tracking_uri
                )
            )
            if not (local / "MLmodel").is_file():
                raise InvalidInputError("model", uri, "holds no MLmodel file, so it is not an MLflow model")
            if not target.exists():
                local.rename(target)
    except MLTrackError:
        raise
    except Exception as exc:
        raise MLTrackError(
            f"could not download {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="check the run id and artifact path (`mltrack runs show RUN_ID`) and the tracking URI",
        ) from None
    return target


def _with_registry_name(path: Path) -> ModelLocation:
    """A model directory, named as the registry version it was downloaded from (MLTrack's model
    cache records that beside the files: the local provider serves from the cache)."""

    from mltrack.models.registry import CACHE_RECORD

    try:
        record = json.loads((path / CACHE_RECORD).read_text())
        return ModelLocation(path, str(record["name"]), str(record["version"]))
    except (OSError, ValueError, KeyError, TypeError):
        return ModelLocation(path)


def _registered(name: str, version: int | str) -> ModelLocation:
    from mltrack.serving.registry_lookup import registered_files

    files = registered_files(name, version)
    if files is not None:
        return ModelLocation(files.path, files.name, files.version)
    # a store the lookup does not read, or nothing found: MLflow's client answers (and words the error)
    from mltrack.models.registry import _download, resolve_version

    resolved = resolve_version(name, version)
    return ModelLocation(_download(resolved), resolved.name, str(resolved.version))


def locate_model(model: str, version: int | str = "latest") -> ModelLocation:
    """Where ``model`` is on this machine, downloading it from the store if need be.

    Args:
        model: a registered model name, ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
            ``runs:/RUN_ID/PATH``, or a local MLflow model directory.
        version: for a registered name (or a ``models:/NAME`` URI without one): a number,
            ``"latest"``, or an alias such as ``"@champion"``.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidInputError(
            "model", model, "must be a registered model name, a models:/ or runs:/ URI, or a model directory"
        )
    explicit = version not in ("latest", None)
    local = _local_directory(model)
    if local is not None:
        if explicit:
            raise InvalidInputError("version", version, f"cannot be used with a model directory ({model})")
        return _with_registry_name(local)
    if model.startswith("runs:/"):
        if explicit:
            raise InvalidInputError("version", version, f"cannot be used with a runs:/ URI ({model})")
        match = re.match(r"^runs:/([^/]+)/(.+?)/?$", model)
        if not match:
            raise InvalidInputError("model", model, "is not a runs:/RUN_ID/PATH URI")
        run_id, artifact_path = match.groups()
        return ModelLocation(_download_uri(model, f"runs/{run_id}/{artifact_path}"))
    if model.startswith("models:/"):
        rest = model[len("models:/") :].strip("/")
        if _LOGGED_MODEL_ID.match(rest):
            return ModelLocation(_download_uri(model, f"logged/{rest}"))
        match = _URI_VERSION.match(rest)
        if not match:
            raise InvalidInputError("model", model, "is not a models:/NAME/VERSION or models:/NAME@ALIAS URI")
        in_uri = match["version"] or (f"@{match['alias']}" if match["alias"] else None)
        if in_uri is not None and explicit and str(version) != in_uri:
            raise InvalidInputError("version", version, f"conflicts with the version in {model}")
        return _registered(match["name"], in_uri or version)
    return _registered(model, version)


def _load_predictor(flavour: Flavour, path: Path) -> Any:
    """The flavour's predictor for ``path``.

    A flavour that keeps the default loader gets it without MLflow's check of the model's
    requirements against the installed packages, which reads every installed distribution's
    metadata (about a second on a full environment) before the model can serve. The server
    runs the same check once it is up (``warn_requirement_mismatches``).
    """
    if type(flavour).load_predictor is not Flavour.load_predictor:
        return flavour.load_predictor(path)
    import mlflow.pyfunc

    predictor = Predictor(mlflow.pyfunc.load_model(str(path), suppress_warnings=True), flavour.name)
    _unchecked.add(path)
    return predictor


#: model directories loaded without MLflow's requirements check (it is still owed)
_unchecked: set[Path] = set()


def requirements_check_owed(path: Path) -> bool:
    """Whether the model at ``path`` was loaded without its requirements check (asked once)."""
    if path in _unchecked:
        _unchecked.discard(path)
        return True
    return False


def warn_requirement_mismatches(path: Path) -> None:
    """Log what MLflow's loader would have: model requirements this environment does not
    meet, and a Python version other than the one the model was saved with (both read by
    ``model_environment``, the rule the cloud providers' images use too)."""
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    environment = model_environment(path)
    if environment.requirements:
        warn_dependency_requirement_mismatches(environment.requirements)
    saved = environment.saved_python
    running = running_python()
    if saved and saved != running:
        logger.warning(
            "mltrack serve: the model was saved with Python %s and is served with Python %s; "
            "it may not load or behave the same",
            saved,
            running,
        )


def read_mlmodel(path: Path) -> dict[str, Any]:
    """The directory's ``MLmodel`` file as a dict (YAML, read as MLflow reads it)."""
    import yaml

    document = yaml.safe_load((path / "MLmodel").read_text())
    if not isinstance(document, dict):
        raise InvalidInputError("model", str(path), "has an MLmodel file that is not a YAML mapping")
    return document


def _flavour_of(mlmodel: dict[str, Any]) -> Flavour:
    """The flavour that wrote a model (MLTrack's tag, else MLflow's flavour keys), as
    ``mltrack.models.registry.flavour_of`` finds it, from the MLmodel dict."""
    from mltrack.models.registry import flavours, get_flavour

    named = (mlmodel.get("metadata") or {}).get("mltrack_flavour")
    if named:
        return get_flavour(named)
    present = mlmodel.get("flavors") or {}
    for flavour in flavours().values():
        if flavour.mlflow_flavour and flavour.mlflow_flavour in present:
            return flavour
    return get_flavour("python")


def _fast_served(location: ModelLocation, flavour: Flavour, mlmodel: dict[str, Any]) -> ServedModel | None:
    """The model loaded without MLflow, when its flavour offers that and it has a signature
    the server checks completely itself (scalar columns, no params); else None."""
    from mltrack.serving.schema import scalar_signature

    if type(flavour).load_fast_predictor is Flavour.load_fast_predictor:
        return None
    if mlmodel.get("is_signature_from_type_hint") or mlmodel.get("type_hint_from_example"):
        return None
    signature = scalar_signature(mlmodel.get("signature"))
    if signature is None:  # none, or one MLflow must enforce inside predict
        return None
    predictor = flavour.load_fast_predictor(location.path, mlmodel)
    if predictor is None:
        return None
    _unchecked.add(location.path)  # MLflow's requirements check is owed, as on the default path
    return ServedModel(
        name=location.name,
        version=location.version,
        flavour=flavour.name,
        signature=signature,
        predictor=predictor,
        path=location.path,
        batchable=bool(getattr(flavour, "batchable", False)),
    )


def load_located(location: ModelLocation) -> ServedModel:
    """Load the model at ``location`` with the flavour that wrote it.

    A flavour's fast loader (``Flavour.load_fast_predictor``) is tried first: it loads
    without importing MLflow, which is a second or more of a server's cold start. The
    signature then comes from the MLmodel file as JSON (``schema.scalar_signature``).
    """
    mlmodel = read_mlmodel(location.path)
    flavour = _flavour_of(mlmodel)
    fast = _fast_served(location, flavour, mlmodel)
    if fast is not None:
        return fast
    from mlflow.models import Model

    predictor = _load_predictor(flavour, location.path)
    signature = Model.load(str(location.path / "MLmodel")).signature
    return ServedModel(
        name=location.name,
        version=location.version,
        flavour=flavour.name,
        signature=signature,
        predictor=predictor,
        path=location.path,
        batchable=bool(getattr(flavour, "batchable", False)),
    )


def load_served_model(model: str, version: int | str = "latest") -> ServedModel:
    """Locate and load ``model`` for serving (see ``locate_model`` for what it may be)."""
    return load_located(locate_model(model, version))
