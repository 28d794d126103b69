"""The ``DeployProvider`` contract: how a registered model version becomes an endpoint.

A provider is a class registered through the ``register_deploy_providers`` hook. MLTrack
(``mltrack.deploy`` and ``mltrack deploy``) does everything providers share: it resolves the
model version, validates the per-deployment config against ``DeploymentConfig`` and the
provider-wide ``Settings`` against the ``[tool.mltrack.plugins.<provider>]`` section, asks the
provider for a ``plan`` (no side effects), records the deployment in the store, calls
``deploy``, then polls ``status`` until it is ready or the wait times out. A provider only
talks to its target.

Remote targets take minutes and need credentials, so:

- ``check_credentials`` runs before anything is created and raises ``CredentialsMissingError``
  naming what to set;
- ``deploy`` may return a ``pending`` status: the core waits (``wait_s`` in
  ``DeploymentConfig`` or the ``timeout`` argument) by polling ``status``;
- long steps report through the ``Progress`` they are given (a rich progress display on the
  command line, log lines in a library call);
- everything a provider needs later (ids, ARNs, pids) goes into ``DeploymentStatus.details``,
  which MLTrack stores with the deployment and hands back as ``Deployment.details``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from mltrack.errors import PluginError

if TYPE_CHECKING:
    from mltrack.deployment.deployments import Deployment


# The registry (plugin manager) is imported inside functions: plugins import this contract at `mltrack --help`
# (benchmarks/import_time.py).


class DeploymentState(str, enum.Enum):
    """Where a deployment is in its life."""

    PENDING = "pending"  # being created or updated; not serving yet
    READY = "ready"  # serving predictions at ``url``
    FAILED = "failed"  # could not start, crashed, or its process is gone; ``message`` says why
    DELETED = "deleted"  # removed (or replaced by a newer deployment of the same name)

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Whether waiting longer cannot change the state."""
        return self is not DeploymentState.PENDING


@dataclass(frozen=True)
class DeploymentStatus:
    """What a provider reports about one deployment."""

    state: DeploymentState
    url: str | None = None
    message: str = ""
    #: provider-specific facts to keep with the deployment (ids, ARNs, pid, port); JSON-able
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRef:
    """The registered model version a deployment serves."""

    name: str
    version: int
    alias: str | None  # the alias the caller asked for ("champion"), if any
    source: str  # the version's artifact URI
    run_id: str | None
    flavour: str | None
    tracking_uri: str

    def download(self) -> Path:
        """The model's local MLflow model directory (downloaded once, then cached)."""
        from mltrack.models.registry import _download, resolve_version

        return _download(resolve_version(self.name, self.version))

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


#: a provider's ``DeploymentConfig`` type: ``class Mine(DeployProvider[MyConfig])`` types
#: ``plan``'s ``config`` and ``DeployPlan.config`` as ``MyConfig``
ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass(frozen=True)
class DeployPlan(Generic[ConfigT]):
    """What a deployment would create or change, computed without side effects."""

    provider: str
    name: str
    model: ModelRef
    #: the validated ``DeploymentConfig`` (an instance of the provider's class, never a dict)
    config: ConfigT
    #: human-readable steps, in order ("start a server process on 127.0.0.1:8011", ...)
    actions: list[str]
    #: what will exist afterwards, by kind (e.g. {"endpoint": "churn", "instance_type": "ml.m5.large"})
    resources: dict[str, Any] = field(default_factory=dict)
    #: the URL the deployment will answer on, when known in advance
    url: str | None = None
    #: the deployment of the same name that this one replaces, if any
    replaces: Deployment | None = None
    #: how long ``deploy`` waits for this deployment to be ready (e.g. from the config's own
    #: ``wait_timeout``); None: the provider's ``default_timeout_s``. A ``timeout`` argument wins.
    wait_timeout_s: float | None = None


class Progress(Protocol):
    """Where a provider reports a long operation's progress."""

    def step(self, message: str) -> None:
        """A new step started (e.g. "uploading model.tar.gz (12 MB)")."""

    def advance(self, done: float, total: float | None = None) -> None:
        """Progress within the current step (bytes uploaded, seconds waited)."""


class NoSettings(BaseModel):
    """A provider without provider-wide settings."""

    model_config = ConfigDict(extra="forbid")


class DeployProvider(ABC, Generic[ConfigT]):
    """A deployment target. Subclass it and register the class with ``register_deploy_providers``.

    Class attributes: ``name`` (the ``provider=`` value), ``Settings`` (provider-wide, read from
    ``[tool.mltrack.plugins.<name>]`` / ``MLTRACK_PLUGINS__<NAME>__*``; declare credentials as
    ``SecretStr``) and ``DeploymentConfig`` (the ``config=`` of one deployment; must forbid
    unknown fields). MLTrack builds the provider as ``Provider(settings)``, once per operation.

    Parametrise it with the config class (``class Mine(DeployProvider[MyConfig])``) and ``plan``
    receives, and ``DeployPlan.config`` holds, a ``MyConfig``: the core validates every config
    against ``DeploymentConfig`` before a provider sees it.
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    DeploymentConfig: ClassVar[type[BaseModel]]
    #: how long ``deploy`` waits for ready and ``deploy``/``delete`` wait for another operation
    #: on the same deployment, in seconds, unless a ``timeout`` argument or the plan's
    #: ``wait_timeout_s`` says otherwise
    default_timeout_s: float = 600.0
    #: seconds between ``status`` calls while waiting for a deployment to be ready
    poll_interval_s: float = 1.0

    def __init__(self, settings: BaseModel | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    def check_credentials(self) -> None:
        """Raise ``CredentialsMissingError`` (saying what to set) when the target cannot be
        reached for lack of credentials. Called before anything is created; the default
        provider needs none."""
        return None

    @abstractmethod
    def plan(
        self, model: ModelRef, name: str, config: ConfigT, *, replaces: Deployment | None = None
    ) -> DeployPlan[ConfigT]:
        """What deploying ``model`` as ``name`` with ``config`` would do. No side effects; at
        least one entry in ``actions``."""

    @abstractmethod
    def deploy(self, plan: DeployPlan[ConfigT], progress: Progress) -> DeploymentStatus:
        """Create (or update, when ``plan.replaces``) the deployment. May return ``pending``:
        the core then polls ``status``. Raise ``DeploymentError`` when it cannot be created,
        after undoing what this call created."""

    @abstractmethod
    def status(self, deployment: Deployment) -> DeploymentStatus:
        """The live state of a recorded deployment (``deployment.details`` holds what ``deploy`` returned)."""

    @abstractmethod
    def predict(self, deployment: Deployment, payload: dict[str, Any]) -> Any:
        """Send one request in MLflow's scoring protocol (``{"dataframe_split": ...}``,
        ``{"inputs": ...}``, ...) and return the ``predictions``."""

    @abstractmethod
    def logs(self, deployment: Deployment, *, tail: int = 100) -> list[str]:
        """The last ``tail`` log lines of the deployment's server."""

    def list(self) -> list[DeploymentStatus]:
        """What the target holds that MLTrack created (with ``details["name"]``), including
        deployments not recorded in this store. The default knows of none."""
        return []

    @abstractmethod
    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        """Remove the deployment; deleting one that is already gone succeeds (``deleted``)."""


def validate_provider(obj: object) -> str:
    """Registry validator: providers are ``DeployProvider`` subclasses with a name and a
    ``DeploymentConfig`` that forbids unknown fields."""
    if not isinstance(obj, type) or not issubclass(obj, DeployProvider):
        raise PluginError(f"register_deploy_providers got {obj!r}, which is not a mltrack.DeployProvider subclass")
    if not obj.name or not isinstance(obj.name, str):
        raise PluginError(f"deploy provider {obj.__name__} has an empty `name`")
    config = getattr(obj, "DeploymentConfig", None)
    for label, model in (("DeploymentConfig", config), ("Settings", obj.Settings)):
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            raise PluginError(f"deploy provider {obj.name!r}: {label} must be a pydantic model class")
        if model.model_config.get("extra") != "forbid":
            raise PluginError(
                f"deploy provider {obj.name!r}: {label} must forbid unknown fields",
                hint='set model_config = ConfigDict(extra="forbid")',
            )
    return obj.name
