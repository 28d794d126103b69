"""The model registry as the UI shows it: models, versions, aliases, source runs."""

from __future__ import annotations

from typing import Any

from mltrack.extend import MlflowStore, mask_secrets, model_versions

MAX_MODELS = 1000
# MLflow keeps a model's version number in a 32-bit column (model_versions.version).
MAX_VERSION = 2**31 - 1


def _aliases(model: Any) -> dict[str, int]:
    return {alias: int(version) for alias, version in (getattr(model, "aliases", {}) or {}).items()}


def _aliases_by_version(model: Any) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    aliases = getattr(model, "aliases", {}) or {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def list_models(store: MlflowStore) -> list[dict[str, Any]]:
    models = store.client.search_registered_models(max_results=MAX_MODELS)
    rows = []
    for model in models:
        latest = max((int(v.version) for v in model.latest_versions or []), default=None)
        rows.append(
            {
                "name": model.name,
                "description": model.description or "",
                "latest_version": latest,
                "aliases": _aliases(model),
                "tags": dict(model.tags or {}),
                "creation_timestamp": model.creation_timestamp,
                "last_updated_timestamp": model.last_updated_timestamp,
            }
        )
    return rows


def version_document(version: Any, aliases: list[str]) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": int(version.version),
        "run_id": version.run_id,
        "source": version.source,
        "status": version.status,
        "description": version.description or "",
        "aliases": sorted(aliases),
        "tags": {k: v for k, v in (version.tags or {}).items() if not k.startswith("mltrack.deployment")},
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
    }


def get_model(store: MlflowStore, name: str) -> dict[str, Any]:
    """A registered model with every version, newest first."""
    model = store.client.get_registered_model(name)
    aliases = _aliases_by_version(model)
    versions = model_versions(store.client, name)
    docs = [version_document(v, aliases.get(str(v.version), [])) for v in versions]
    for doc in docs:
        # For the browser only: plugins' panels (get_version) may need the real source to read it.
        doc["source"] = mask_secrets(doc["source"])
    docs.sort(key=lambda d: d["version"], reverse=True)
    return {
        "name": model.name,
        "description": model.description or "",
        "aliases": _aliases(model),
        "tags": dict(model.tags or {}),
        "versions": docs,
    }


def get_version(store: MlflowStore, name: str, version: int) -> dict[str, Any]:
    model = store.client.get_registered_model(name)
    found = store.client.get_model_version(name, str(version))
    return version_document(found, _aliases_by_version(model).get(str(version), []))
