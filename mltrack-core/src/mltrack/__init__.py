"""MLTrack: experiment tracking on MLflow, extensible with plugins.

Importing ``mltrack`` is cheap: the public names below are loaded on first use, and
MLflow itself only when a store is first touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mltrack._version import __version__

_EXPORTS: dict[str, str] = {
    # tracking
    "start_run": "mltrack.tracking.runs",
    "end_run": "mltrack.tracking.runs",
    "active_run": "mltrack.tracking.runs",
    "get_run": "mltrack.tracking.runs",
    "flush": "mltrack.tracking.runs",
    "ActiveRun": "mltrack.tracking.runs",
    "log_metric": "mltrack.tracking.logging_api",
    "log_metrics": "mltrack.tracking.logging_api",
    "log_param": "mltrack.tracking.logging_api",
    "log_params": "mltrack.tracking.logging_api",
    "set_tag": "mltrack.tracking.logging_api",
    "set_tags": "mltrack.tracking.logging_api",
    "log_artifact": "mltrack.tracking.logging_api",
    "log_artifacts": "mltrack.tracking.logging_api",
    "log_dict": "mltrack.tracking.logging_api",
    "log_text": "mltrack.tracking.logging_api",
    "track": "mltrack.tracking.decorator",
    "search_runs": "mltrack.tracking.queries",
    # models
    "log_model": "mltrack.models.registry",
    "register_model": "mltrack.models.registry",
    "load_model": "mltrack.models.registry",
    "load_predictor": "mltrack.models.registry",
    "set_alias": "mltrack.models.registry",
    "delete_alias": "mltrack.models.registry",
    "list_models": "mltrack.models.registry",
    "list_versions": "mltrack.models.registry",
    "ModelInfo": "mltrack.models.registry",
    "ModelNotFoundError": "mltrack.models.registry",
    "Flavour": "mltrack.models.flavours",
    "Predictor": "mltrack.models.flavours",
    "autolog": "mltrack.tracking.autologging",
    # deployments
    "deploy": "mltrack.deployment.deployments",
    "plan_deployment": "mltrack.deployment.deployments",
    "list_deployments": "mltrack.deployment.deployments",
    "get_deployment": "mltrack.deployment.deployments",
    "delete_deployment": "mltrack.deployment.deployments",
    "Deployment": "mltrack.deployment.deployments",
    "DeployProvider": "mltrack.deployment.providers",
    "DeployPlan": "mltrack.deployment.providers",
    "DeploymentState": "mltrack.deployment.providers",
    "DeploymentStatus": "mltrack.deployment.providers",
    "ModelRef": "mltrack.deployment.providers",
    "Autologger": "mltrack.tracking.autologging",
    # experiments
    "create_experiment": "mltrack.tracking.experiments",
    "get_experiment": "mltrack.tracking.experiments",
    "set_experiment": "mltrack.tracking.experiments",
    "list_experiments": "mltrack.tracking.experiments",
    # configuration and plugins
    "configure": "mltrack.config.settings",
    "get_settings": "mltrack.config.settings",
    "plugin_settings": "mltrack.plugins.manager",
    "hookimpl": "mltrack.hookspecs",
    "get_plugin_manager": "mltrack.plugins.manager",
    "Sink": "mltrack.storage.sinks",
    "Batch": "mltrack.storage.records",
    "Metric": "mltrack.storage.records",
    "Param": "mltrack.storage.records",
    "Tag": "mltrack.storage.records",
    # errors
    "MLTrackError": "mltrack.errors",
    "InvalidInputError": "mltrack.errors",
    "InvalidKeyError": "mltrack.errors",
    "InvalidMetricValueError": "mltrack.errors",
    "InvalidParamValueError": "mltrack.errors",
    "InvalidTagValueError": "mltrack.errors",
    "ConfigError": "mltrack.errors",
    "PluginError": "mltrack.errors",
    "PluginCollisionError": "mltrack.errors",
    "NoActiveRunError": "mltrack.errors",
    "RunAlreadyActiveError": "mltrack.errors",
    "ExperimentNotFoundError": "mltrack.errors",
    "RunNotFoundError": "mltrack.errors",
    "LoggingFailedError": "mltrack.errors",
    "StoreError": "mltrack.errors",
    "StoreUnreachableError": "mltrack.errors",
    "SpoolWriteError": "mltrack.errors",
    "DeploymentError": "mltrack.errors",
    "DeploymentNotFoundError": "mltrack.errors",
    "CredentialsMissingError": "mltrack.errors",
    "DeployTimeoutError": "mltrack.errors",
    "SpoolFullError": "mltrack.errors",
    "RecordsRefusedWarning": "mltrack.errors",
}

# Spelled out (not derived from _EXPORTS) so type checkers see the public names.
__all__ = [
    "ActiveRun",
    "Autologger",
    "Batch",
    "ConfigError",
    "CredentialsMissingError",
    "DeployPlan",
    "DeployProvider",
    "DeployTimeoutError",
    "Deployment",
    "DeploymentError",
    "DeploymentNotFoundError",
    "DeploymentState",
    "DeploymentStatus",
    "ExperimentNotFoundError",
    "Flavour",
    "InvalidInputError",
    "InvalidKeyError",
    "InvalidMetricValueError",
    "InvalidParamValueError",
    "InvalidTagValueError",
    "LoggingFailedError",
    "MLTrackError",
    "Metric",
    "ModelInfo",
    "ModelNotFoundError",
    "ModelRef",
    "NoActiveRunError",
    "Param",
    "PluginCollisionError",
    "PluginError",
    "Predictor",
    "RecordsRefusedWarning",
    "RunAlreadyActiveError",
    "RunNotFoundError",
    "Sink",
    "SpoolFullError",
    "SpoolWriteError",
    "StoreError",
    "StoreUnreachableError",
    "Tag",
    "__version__",
    "active_run",
    "autolog",
    "configure",
    "create_experiment",
    "delete_alias",
    "delete_deployment",
    "deploy",
    "end_run",
    "flush",
    "get_deployment",
    "get_experiment",
    "get_plugin_manager",
    "get_run",
    "get_settings",
    "hookimpl",
    "list_deployments",
    "list_experiments",
    "list_models",
    "list_versions",
    "load_model",
    "load_predictor",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "plan_deployment",
    "plugin_settings",
    "register_model",
    "search_runs",
    "set_alias",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "track",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from mltrack.config.settings import configure, get_settings
    from mltrack.deployment.deployments import (
        Deployment,
        delete_deployment,
        deploy,
        get_deployment,
        list_deployments,
        plan_deployment,
    )
    from mltrack.deployment.providers import DeploymentState, DeploymentStatus, DeployPlan, DeployProvider, ModelRef
    from mltrack.errors import (
        ConfigError,
        CredentialsMissingError,
        DeploymentError,
        DeploymentNotFoundError,
        DeployTimeoutError,
        ExperimentNotFoundError,
        InvalidInputError,
        InvalidKeyError,
        InvalidMetricValueError,
        InvalidParamValueError,
        InvalidTagValueError,
        LoggingFailedError,
        MLTrackError,
        NoActiveRunError,
        PluginCollisionError,
        PluginError,
        RecordsRefusedWarning,
        RunAlreadyActiveError,
        RunNotFoundError,
        SpoolFullError,
        SpoolWriteError,
        StoreError,
        StoreUnreachableError,
    )
    from mltrack.hookspecs import hookimpl
    from mltrack.models.flavours import Flavour, Predictor
    from mltrack.models.registry import (
        ModelInfo,
        ModelNotFoundError,
        delete_alias,
        list_models,
        list_versions,
        load_model,
        load_predictor,
        log_model,
        register_model,
        set_alias,
    )
    from mltrack.plugins.manager import get_plugin_manager, plugin_settings
    from mltrack.storage.records import Batch, Metric, Param, Tag
    from mltrack.storage.sinks import Sink
    from mltrack.tracking.autologging import Autologger, autolog
    from mltrack.tracking.decorator import track
    from mltrack.tracking.experiments import create_experiment, get_experiment, list_experiments, set_experiment
    from mltrack.tracking.logging_api import (
        log_artifact,
        log_artifacts,
        log_dict,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
    )
    from mltrack.tracking.queries import search_runs
    from mltrack.tracking.runs import ActiveRun, active_run, end_run, flush, get_run, start_run
