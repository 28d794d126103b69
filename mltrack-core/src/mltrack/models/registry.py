"""Models: log with a flavour, register, and load back from MLflow's model registry."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrack._version import __version__
from mltrack.errors import InvalidInputError, MLTrackError
from mltrack.models.flavours import Flavour, Predictor
from mltrack.plugins.manager import get_plugin_manager
from mltrack.storage.store import get_store
from mltrack.storage.validation import check_key, tag_to_string
from mltrack.tracking import runs
from mltrack.tracking.experiments import store_errors
from mltrack.tracking.offline import check_registrable

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

# mlflow and the settings (pydantic) are imported inside functions so that `import mltrack.models` stays light
# (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.models")

_NAME = re.compile(r"^[\w.\-/ ]+$")


class ModelNotFoundError(MLTrackError, LookupError):
    """A registered model, version or alias that does not exist."""


@dataclass
class ModelInfo:
    """What ``log_model`` returns (``model_uri`` as MLflow's ModelInfo has it)."""

    model_uri: str
    run_id: str
    artifact_path: str
    flavour: str
    signature: Any
    registered_model_version: int | None = None


def flavours() -> dict[str, Flavour]:
    """Every registered flavour by name (the core's ``python`` flavour included)."""

    return dict(get_plugin_manager().objects("flavours"))


def get_flavour(name: str) -> Flavour:
    """The installed flavour called ``name``; an unknown one raises, naming the plugin to install."""

    flavour: Flavour = get_plugin_manager().lookup("flavours", name)
    return flavour


def infer_flavour(model: Any) -> Flavour:
    """The flavour that handles ``model`` (plugins first, the ``python`` flavour last)."""

    name = get_plugin_manager().first_result("infer_flavour", model=model)
    if name is None:
        raise InvalidInputError(
            "model",
            model,
            "is not a model any installed flavour can save",
            hint="give it a predict() method, pass flavour=..., or install the framework's plugin",
        )
    return get_flavour(str(name))


def _check_name(field: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or not _NAME.match(name) or ".." in name.split("/"):
        raise InvalidInputError(field, name, "must be a non-empty name of letters, digits, '_', '-', '.', '/', ' '")
    return name


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavour: str | None = None,
    signature: Any = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    pip_requirements: list[str] | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Save ``model`` as an MLflow model in the active run's artifacts under ``name``.

    The flavour is inferred unless given; a signature is inferred from
    ``input_example`` unless given. Returns the ``model_uri`` (``runs:/<id>/<name>``).
    """
    from mlflow.models import infer_signature

    _check_name("name", name)
    if registered_model_name is not None:
        _check_name("registered_model_name", registered_model_name)
    run = runs.current_run(run_id)
    chosen = get_flavour(flavour) if flavour is not None else infer_flavour(model)
    if flavour is not None and not chosen.can_handle(model):
        raise InvalidInputError("model", model, f"cannot be saved by the {flavour!r} flavour")
    if signature is None and input_example is not None:
        try:
            output = chosen.predict_for_signature(model, input_example)
        except Exception as exc:
            raise InvalidInputError(
                "input_example",
                input_example,
                f"could not be predicted by the model: {exc}",
                hint="pass an input the model accepts, or signature=... explicitly",
            ) from None
        signature = infer_signature(input_example, output)
    requirements = pip_requirements or chosen.requirements(model)
    metadata = {"mltrack_flavour": chosen.name, "mltrack_version": __version__}
    with tempfile.TemporaryDirectory(prefix="mltrack-model-") as tmp:
        local = Path(tmp) / "model"
        chosen.save(
            model,
            local,
            signature=signature,
            input_example=input_example,
            pip_requirements=requirements,
            metadata=metadata,
        )
        with store_errors(run.store):
            run.store.client.log_artifacts(run.run_id, str(local), name)
    info = ModelInfo(f"runs:/{run.run_id}/{name}", run.run_id, name, chosen.name, signature)
    if registered_model_name is not None:
        info.registered_model_version = register_model(info.model_uri, registered_model_name)
    return info


def _source_of(uri: str) -> tuple[str, str | None]:
    """Artifact location and run id behind a ``runs:/`` URI (other URIs as given)."""
    match = re.match(r"^runs:/([^/]+)/(.+)$", uri)
    if not match:
        return uri, None
    run_id, path = match.groups()
    store = get_store()
    return f"{store.client.get_run(run_id).info.artifact_uri.rstrip('/')}/{path}", run_id


def register_model(
    model: Any,
    name: str,
    *,
    tags: dict[str, Any] | None = None,
    alias: str | None = None,
    description: str | None = None,
) -> int:
    """Register a model object (logged first) or a model URI under ``name``; returns the version."""
    from mlflow.exceptions import MlflowException

    _check_name("name", name)
    clean_tags = {check_key("tag", k): tag_to_string(k, v) for k, v in (tags or {}).items()}
    if alias is not None:
        _check_alias(alias)
    if isinstance(model, str):
        uri = model
    elif runs.active_run() is not None:
        uri = log_model(model, "model").model_uri
    else:
        # The run that holds the model belongs with the model, not on the dashboard's default
        # experiment: the experiment of its earlier versions, or one kept for registrations.
        earlier = _experiment_of_versions(name)
        with runs.start_run(
            f"register-{name}",
            experiment_id=earlier,
            experiment=None if earlier else REGISTRATION_EXPERIMENT,
            tags={"mltrack.registered_model": name},
        ):
            uri = log_model(model, "model").model_uri
    check_registrable(uri)  # an offline run's model is saved, but not in the store yet
    store = get_store()
    client = store.client
    with store_errors(store):
        source, run_id = _source_of(uri)
        try:
            client.create_registered_model(name, description=description)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(name, source, run_id=run_id, tags=clean_tags, description=description)
        if alias is not None:
            client.set_registered_model_alias(name, alias.lstrip("@"), version.version)
    return int(version.version)


def _check_alias(alias: Any) -> str:
    if (
        not isinstance(alias, str)
        or not re.match(r"^@?[A-Za-z][\w\-]*$", alias)
        or alias.lstrip("@").lower() in {"latest"}
        or re.match(r"^@?v\d+$", alias)
    ):
        raise InvalidInputError(
            "alias",
            alias,
            "must start with a letter and use letters, digits, '_' or '-' ('latest' and 'v<N>' are reserved)",
        )
    return alias.lstrip("@")


def _registered(name: str) -> RegisteredModel:
    from mlflow.exceptions import MlflowException

    client = get_store().client
    try:
        return client.get_registered_model(name)
    except MlflowException:
        existing = [m.name for m in client.search_registered_models(max_results=20)]
        raise ModelNotFoundError(
            f"no registered model named {name!r}",
            hint=f"registered models: {', '.join(existing) or '(none)'}",
        ) from None


REGISTRATION_EXPERIMENT = "registered-models"


def _experiment_of_versions(name: str) -> str | None:
    """The experiment of the run behind the newest version of ``name``, if any."""
    client = get_store().client
    try:
        versions = sorted(model_versions(client, name), key=lambda v: int(v.version))
        for version in reversed(versions):
            if version.run_id:
                return str(client.get_run(version.run_id).info.experiment_id)
    except Exception:  # a version whose run was deleted: fall back to the registrations' experiment
        return None
    return None


def model_versions(client: Any, name: str) -> list[ModelVersion]:
    """Every version of registered model ``name`` in ``client``'s registry, whatever the name holds.

    MLflow allows any character in a model name, but its search filter has no escapes: a
    quote or a backslash cannot be written inside ``name = '...'``. Such names are looked up
    with a ``LIKE`` pattern in which each of those characters is the one-character wildcard,
    and the matches are then narrowed to the exact name.

    Args:
        client: an ``mlflow.MlflowClient``.
        name: the registered model's exact name.
    """
    if "'" not in name and "\\" not in name:
        return list(client.search_model_versions(f"name = '{name}'"))
    # "_" in place of ' and \ (PostgreSQL's LIKE escape). "%" and "_" in the name are
    # wildcards too, but each also matches itself, so the exact name is always among the matches.
    pattern = name.replace("'", "_").replace("\\", "_")
    return [v for v in client.search_model_versions(f"name LIKE '{pattern}'") if v.name == name]


def resolve_version(name: str, version: int | str = "latest") -> ModelVersion:
    """The model version meant by an int, ``"latest"``, or an alias (``"@champion"``/``"champion"``)."""
    client = get_store().client
    model = _registered(name)
    versions = model_versions(client, name)
    numbers = sorted(int(v.version) for v in versions)
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise InvalidInputError("version", version, "must be an int, 'latest' or an alias like '@champion'")
    if version == "latest":
        if not numbers:
            raise ModelNotFoundError(f"model {name!r} has no versions")
        version = numbers[-1]
    if isinstance(version, str) and version.isascii() and version.isdigit():
        version = int(version)
    if isinstance(version, int):
        if version not in numbers:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}", hint=f"versions: {', '.join(map(str, numbers))}"
            )
        return client.get_model_version(name, str(version))
    alias = version.lstrip("@")
    aliases = dict(model.aliases or {})
    if alias not in aliases:
        shown = ", ".join(f"@{a} -> v{v}" for a, v in sorted(aliases.items())) or "(none)"
        raise ModelNotFoundError(
            f"model {name!r} has no alias {alias!r}", hint=f"aliases: {shown}; versions: {', '.join(map(str, numbers))}"
        )
    return client.get_model_version(name, str(aliases[alias]))


#: written beside a downloaded model version: which store and version the files are
CACHE_RECORD = "mltrack-model.json"


def _cache_record(version: ModelVersion, store_key: str) -> dict[str, Any]:
    # the store by a hash of its URI: a URI may hold a password, and model folders get shipped
    return {
        "name": version.name,
        "version": str(version.version),
        "source": str(version.source),
        "created": int(version.creation_timestamp or 0),
        "store": store_key,
    }


def _download(version: ModelVersion) -> Path:
    """The local directory of a registered model version, downloaded once per store.

    The cache is keyed by the store and checked against the version's source and creation
    time, so a model deleted and registered again under the same name and number (or the
    same name in another store) is never served from stale files.
    """

    import mlflow.artifacts

    from mltrack.config.settings import get_settings

    tracking_uri = get_store().tracking_uri
    store_key = hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    target = Path(get_settings().data_dir) / "models" / store_key / version.name / str(version.version)
    record = _cache_record(version, store_key)
    try:
        if (target / "MLmodel").is_file() and json.loads((target / CACHE_RECORD).read_text()) == record:
            return target
    except (OSError, ValueError):
        pass  # no or unreadable record: download again
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=tmp, tracking_uri=tracking_uri)
        )
        if not (local / "MLmodel").is_file():
            raise ModelNotFoundError(f"model {version.name} v{version.version} at {version.source} has no MLmodel")
        (local / CACHE_RECORD).write_text(json.dumps(record))
        if target.exists():  # stale files of another model under this name and number
            shutil.rmtree(target)
        local.rename(target)
    return target


def flavour_of(path: Path) -> Flavour:
    """The flavour that wrote a model directory (MLTrack's tag, else MLflow's flavour keys)."""
    from mlflow.models import Model

    meta = Model.load(str(path / "MLmodel"))
    known = flavours()
    named = (meta.metadata or {}).get("mltrack_flavour")
    if named:
        return get_flavour(named)
    for flavour in known.values():
        if flavour.mlflow_flavour and flavour.mlflow_flavour in meta.flavors:
            return flavour
    return get_flavour("python")


def load_model(name: str, version: int | str = "latest") -> Any:
    """The native model object of a registered model version."""
    path = _download(resolve_version(name, version))
    return flavour_of(path).load(path)


def load_predictor(name: str, version: int | str = "latest") -> Predictor:
    """A uniform ``predict(inputs, params=None)`` over a registered model version."""
    path = _download(resolve_version(name, version))
    return flavour_of(path).load_predictor(path)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point ``alias`` of model ``name`` at ``version``."""
    resolved = resolve_version(name, version)
    get_store().client.set_registered_model_alias(name, _check_alias(alias), resolved.version)


def delete_alias(name: str, alias: str) -> None:
    resolve_version(name, alias)  # raises, listing aliases, if it does not exist
    get_store().client.delete_registered_model_alias(name, alias.lstrip("@"))


def list_models() -> list[RegisteredModel]:
    return list(get_store().client.search_registered_models())


def list_versions(name: str) -> list[ModelVersion]:
    _registered(name)
    versions = model_versions(get_store().client, name)
    return sorted(versions, key=lambda v: int(v.version))
