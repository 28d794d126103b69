"""The extension surface: everything a plugin may use of MLTrack beyond the user API.

A plugin imports only ``mltrack`` (the user API and the error classes), ``mltrack.hookspecs``
(``hookimpl`` and the hook specifications), ``mltrack.testing`` (conformance suites and real
local servers) and this module. Every other module of ``mltrack-core`` is internal and may
change in any release; ``make lint`` (import-linter) refuses a plugin that imports one.

Importing this module is cheap: each name is imported from where it lives when first used,
so a plugin's modules can import from here at module level without loading MLflow, FastAPI
or pydantic before they are needed.

The names, by purpose (docs/plugin-authors.md lists them with one line each):

- contract types: ``Flavour``, ``Predictor``, ``DeployProvider``, ``DeployPlan``, ``Deployment``,
  ``DeploymentStatus``, ``DeploymentState``, ``ModelRef``, ``Progress``, ``NoSettings``, ``Sink``,
  ``Batch``, ``Metric``, ``Param``, ``Tag``, ``Autologger``
- settings: ``get_settings``, ``plugin_settings``, ``config_error_from``, ``get_plugin_manager``
- models: ``resolve_version``, ``download_model_version``, ``model_versions``, ``flavour_of``,
  ``get_flavour``, ``flavour_distribution``, ``model_environment``, ``ModelEnvironment``,
  ``requirement_applies``
- deployments: ``resolve_model_ref``, ``refresh_deployment``, ``config_table``, ``replace_generated``;
  the provider kit ``ProcessProvider``, ``ProcessDeploymentConfig``, ``serve_command``
- params: ``param_to_string``, ``check_key``, ``flatten``, ``describe_object``, ``SCALAR_TYPES``,
  ``MAX_PARAM_VALUE_LENGTH``
- serving: ``create_app``, ``load_served_model``, ``serve``, ``check_health``, ``invoke``
- store: ``MlflowStore``, ``get_store``, ``run_client``, ``store_errors``
- runs and text: ``resolve_run_id``, ``short_run_id``, ``mask_secrets``, ``install_hint``,
  ``finite_or_none`` (strict JSON: NaN and infinity as ``None``)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The registry, the deployments and the runs are imported inside functions: plugins import this module at `mltrack
# --help` (benchmarks/import_time.py).

_EXPORTS: dict[str, str] = {
    # contract types
    "Flavour": "mltrack.models.flavours",
    "Predictor": "mltrack.models.flavours",
    "DeployProvider": "mltrack.deployment.providers",
    "DeployPlan": "mltrack.deployment.providers",
    "DeploymentStatus": "mltrack.deployment.providers",
    "DeploymentState": "mltrack.deployment.providers",
    "ModelRef": "mltrack.deployment.providers",
    "Progress": "mltrack.deployment.providers",
    "NoSettings": "mltrack.deployment.providers",
    "ProcessProvider": "mltrack.deployment.process_provider",
    "ProcessDeploymentConfig": "mltrack.deployment.process_provider",
    "serve_command": "mltrack.deployment.process_provider",
    "Deployment": "mltrack.deployment.deployments",
    "Sink": "mltrack.storage.sinks",
    "Batch": "mltrack.storage.records",
    "Metric": "mltrack.storage.records",
    "Param": "mltrack.storage.records",
    "Tag": "mltrack.storage.records",
    "Autologger": "mltrack.tracking.autologging",
    # settings and plugins
    "get_settings": "mltrack.config.settings",
    "plugin_settings": "mltrack.plugins.manager",
    "config_error_from": "mltrack.config.settings",
    "get_plugin_manager": "mltrack.plugins.manager",
    # models
    "resolve_version": "mltrack.models.registry",
    "model_versions": "mltrack.models.registry",
    "flavour_of": "mltrack.models.registry",
    "get_flavour": "mltrack.models.registry",
    "flavour_distribution": "mltrack.models.environment",
    "model_environment": "mltrack.models.environment",
    "ModelEnvironment": "mltrack.models.environment",
    "requirement_applies": "mltrack.models.environment",
    # deployments
    "resolve_model_ref": "mltrack.deployment.deployments",
    "config_table": "mltrack.config.docs",
    "replace_generated": "mltrack.config.docs",
    # the loggable-param rule
    "param_to_string": "mltrack.storage.validation",
    "check_key": "mltrack.storage.validation",
    "flatten": "mltrack.storage.validation",
    "SCALAR_TYPES": "mltrack.storage.validation",
    "MAX_PARAM_VALUE_LENGTH": "mltrack.storage.validation",
    "describe_object": "mltrack.tracking.decorator",
    # serving
    "create_app": "mltrack.serving.app",
    "load_served_model": "mltrack.serving.loading",
    "serve": "mltrack.serving.server",
    "check_health": "mltrack.serving.client",
    "invoke": "mltrack.serving.client",
    # store
    "MlflowStore": "mltrack.storage.store",
    "get_store": "mltrack.storage.store",
    "store_errors": "mltrack.tracking.experiments",
    # runs and text
    "resolve_run_id": "mltrack.tracking.run_ids",
    "short_run_id": "mltrack.tracking.run_ids",
    "mask_secrets": "mltrack.config.secrets",
    "install_hint": "mltrack.plugins.install_hint",
    "finite_or_none": "mltrack.storage.records",
}

#: defined in this module (not re-exported from another)
_OWN = ("download_model_version", "refresh_deployment", "run_client")

# Spelled out (not derived from _EXPORTS) so type checkers see the public names; a test checks
# that the three agree.
__all__ = [
    "MAX_PARAM_VALUE_LENGTH",
    "SCALAR_TYPES",
    "Autologger",
    "Batch",
    "DeployPlan",
    "DeployProvider",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "Flavour",
    "Metric",
    "MlflowStore",
    "ModelEnvironment",
    "ModelRef",
    "NoSettings",
    "Param",
    "Predictor",
    "ProcessDeploymentConfig",
    "ProcessProvider",
    "Progress",
    "Sink",
    "Tag",
    "check_health",
    "check_key",
    "config_error_from",
    "config_table",
    "create_app",
    "describe_object",
    "download_model_version",
    "finite_or_none",
    "flatten",
    "flavour_distribution",
    "flavour_of",
    "get_flavour",
    "get_plugin_manager",
    "get_settings",
    "get_store",
    "install_hint",
    "invoke",
    "load_served_model",
    "mask_secrets",
    "model_environment",
    "model_versions",
    "param_to_string",
    "plugin_settings",
    "refresh_deployment",
    "replace_generated",
    "requirement_applies",
    "resolve_model_ref",
    "resolve_run_id",
    "resolve_version",
    "run_client",
    "serve",
    "serve_command",
    "short_run_id",
    "store_errors",
]


def download_model_version(version: Any) -> Path:
    """The local directory of a registered model version (an MLflow ``ModelVersion``, as
    :func:`resolve_version` returns it), downloaded once per store and cached.

    This is the download ``mltrack.load_model`` uses: a plugin's own loader gets the same cache.
    """
    from mltrack.models.registry import _download

    return _download(version)


def refresh_deployment(deployment: Deployment) -> Deployment:
    """``deployment`` with its status asked from its provider now (the record is updated too)."""
    from mltrack.deployment.deployments import refresh

    return refresh(deployment)


def run_client(run_id: str | None = None) -> Any:
    """The ``mlflow.MlflowClient`` of the store that the active run (or the run ``run_id`` of
    this process) logs to; raises ``NoActiveRunError`` when there is none."""
    from mltrack.tracking.runs import current_run

    return current_run(run_id).store.client


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrack.extend' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from mltrack.config.docs import config_table, replace_generated
    from mltrack.config.secrets import mask_secrets
    from mltrack.config.settings import config_error_from, get_settings
    from mltrack.deployment.deployments import Deployment, resolve_model_ref
    from mltrack.deployment.process_provider import ProcessDeploymentConfig, ProcessProvider, serve_command
    from mltrack.deployment.providers import (
        DeploymentState,
        DeploymentStatus,
        DeployPlan,
        DeployProvider,
        ModelRef,
        NoSettings,
        Progress,
    )
    from mltrack.models.environment import (
        ModelEnvironment,
        flavour_distribution,
        model_environment,
        requirement_applies,
    )
    from mltrack.models.flavours import Flavour, Predictor
    from mltrack.models.registry import flavour_of, get_flavour, model_versions, resolve_version
    from mltrack.plugins.install_hint import install_hint
    from mltrack.plugins.manager import get_plugin_manager, plugin_settings
    from mltrack.serving.app import create_app
    from mltrack.serving.client import check_health, invoke
    from mltrack.serving.loading import load_served_model
    from mltrack.serving.server import serve
    from mltrack.storage.records import Batch, Metric, Param, Tag, finite_or_none
    from mltrack.storage.sinks import Sink
    from mltrack.storage.store import MlflowStore, get_store
    from mltrack.storage.validation import MAX_PARAM_VALUE_LENGTH, SCALAR_TYPES, check_key, flatten, param_to_string
    from mltrack.tracking.autologging import Autologger
    from mltrack.tracking.decorator import describe_object
    from mltrack.tracking.experiments import store_errors
    from mltrack.tracking.run_ids import resolve_run_id, short_run_id
