"""The deploy contract: provider lookup, config validation, records in the store, waiting.

The provider here, ``memory``, is a real ``DeployProvider`` whose target is a dict in this
process: it exercises what the core does around any provider (validation before anything
is created, records, polling a pending deployment, failures, credentials). The ``local``
provider, which starts real servers, is tested in test_local_provider.py.
"""

from __future__ import annotations

import json
import sys
import time
import types
from importlib import metadata
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

import mltrack
from mltrack.cli.deploy import parse_config
from mltrack.deployment.deployments import (
    Deployment,
    default_name,
    delete_deployment,
    deploy,
    get_deployment,
    list_deployments,
    plan_deployment,
    to_scoring_payload,
)
from mltrack.deployment.providers import (
    DeploymentState,
    DeploymentStatus,
    DeployPlan,
    DeployProvider,
    ModelRef,
    Progress,
)
from mltrack.errors import (
    CredentialsMissingError,
    DeploymentError,
    DeploymentNotFoundError,
    DeployTimeoutError,
    InvalidInputError,
    PluginError,
)
from mltrack.plugins import manager as plugins
from mltrack.plugins.install_hint import install_hint


class MemoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(1, ge=1, le=4)
    polls_until_ready: int = Field(0, ge=0)
    fail: bool = False
    fail_while_creating: bool = False
    token: SecretStr | None = None
    wait_s: float | None = None


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None


class MemoryProvider(DeployProvider[MemoryConfig]):
    """Deploys into ``endpoints``; a deployment needs ``polls_until_ready`` status calls."""

    name = "memory"
    Settings = MemorySettings
    DeploymentConfig = MemoryConfig
    default_timeout_s = 5.0
    poll_interval_s = 0.01
    endpoints: ClassVar[dict[str, dict[str, Any]]] = {}
    steps: ClassVar[list[str]] = []

    def check_credentials(self) -> None:
        if self.settings.api_key is None:  # type: ignore[attr-defined]
            raise CredentialsMissingError(
                "the memory provider needs an API key", hint="set MLTRACK_PLUGINS__MEMORY__API_KEY"
            )

    def plan(
        self, model: ModelRef, name: str, config: MemoryConfig, *, replaces: Deployment | None = None
    ) -> DeployPlan[MemoryConfig]:
        return DeployPlan(
            provider=self.name,
            name=name,
            model=model,
            config=config,
            actions=[f"create endpoint {name} serving {model.uri}"],
            url=f"memory://{name}",
            replaces=replaces,
            wait_timeout_s=config.wait_s,
        )

    def deploy(self, plan: DeployPlan[MemoryConfig], progress: Progress) -> DeploymentStatus:
        progress.step(f"creating {plan.name}")
        self.steps.append(f"deploy {plan.name} v{plan.model.version}")
        if plan.config.fail_while_creating:
            raise DeploymentError("the target refused the endpoint")
        self.endpoints[plan.name] = {"version": plan.model.version, "polls": plan.config.polls_until_ready}
        self.endpoints[plan.name]["fail"] = plan.config.fail
        return DeploymentStatus(DeploymentState.PENDING, f"memory://{plan.name}", "creating", {"endpoint": plan.name})

    def status(self, deployment: Deployment) -> DeploymentStatus:
        endpoint = self.endpoints.get(deployment.details.get("endpoint", ""))
        if endpoint is None:
            return DeploymentStatus(DeploymentState.FAILED, deployment.url, "endpoint is gone")
        if endpoint["polls"] > 0:
            endpoint["polls"] -= 1
            return DeploymentStatus(DeploymentState.PENDING, deployment.url, "creating")
        if endpoint["fail"]:
            return DeploymentStatus(DeploymentState.FAILED, deployment.url, "container exited 1")
        return DeploymentStatus(DeploymentState.READY, deployment.url, "in service")

    def predict(self, deployment: Deployment, payload: dict[str, Any]) -> Any:
        return {"echo": payload, "version": self.endpoints[deployment.name]["version"]}

    def logs(self, deployment: Deployment, *, tail: int = 100) -> list[str]:
        return [f"log of {deployment.name}"][-tail:]

    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        self.endpoints.pop(deployment.name, None)
        return DeploymentStatus(DeploymentState.DELETED, deployment.url, "deleted")


@pytest.fixture
def memory_provider(monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> type[MemoryProvider]:
    module = types.ModuleType("mltrack_test_memory_provider")

    def register_deploy_providers(register: Any) -> None:
        register(MemoryProvider)

    module.register_deploy_providers = mltrack.hookimpl(register_deploy_providers)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry = metadata.EntryPoint(name="memory", value=module.__name__, group="mltrack")
    monkeypatch.setattr(plugins, "_manager", plugins.PluginManager(entry_points=[entry], strict=True))
    monkeypatch.setenv("MLTRACK_PLUGINS__MEMORY__API_KEY", "k-123")
    MemoryProvider.endpoints.clear()
    MemoryProvider.steps.clear()
    return MemoryProvider


def test_one_deploy_builds_one_provider_and_looks_it_up_once(
    memory_provider: type[MemoryProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_model()
    built: list[MemoryProvider] = []
    lookups: list[str] = []
    original_init, original_lookup = MemoryProvider.__init__, plugins.PluginManager.lookup

    def counting_init(self: MemoryProvider, settings: Any = None) -> None:
        built.append(self)
        original_init(self, settings)

    def counting_lookup(self: plugins.PluginManager, kind: str, name: str) -> Any:
        lookups.append(kind)
        return original_lookup(self, kind, name)

    monkeypatch.setattr(MemoryProvider, "__init__", counting_init)
    monkeypatch.setattr(plugins.PluginManager, "lookup", counting_lookup)
    deployment = deploy("churn", provider="memory", config={"polls_until_ready": 2})
    assert deployment.state is DeploymentState.READY
    assert (len(built), lookups) == (1, ["deploy_providers"])


def register_model(name: str = "churn", versions: int = 1) -> None:
    for _ in range(versions):
        mltrack.register_model(lambda rows: [len(rows)], name)


def test_deploy_waits_until_ready_and_records_the_deployment(memory_provider: type[MemoryProvider]) -> None:
    register_model(versions=2)
    deployment = deploy("churn", provider="memory", config={"polls_until_ready": 3, "replicas": 2})
    assert deployment.state is DeploymentState.READY
    assert (deployment.id, deployment.model_version, deployment.url) == ("memory/churn", 2, "memory://churn")
    assert deployment.config["replicas"] == 2
    assert memory_provider.endpoints["churn"]["polls"] == 0  # the core polled until ready

    recorded = get_deployment("memory/churn")
    assert recorded.state is DeploymentState.READY and recorded.details == {"endpoint": "churn"}
    tags = mltrack.list_versions("churn")[1].tags
    assert json.loads(tags["mltrack.deployment.memory.churn"])["state"] == "ready"
    assert tags["mltrack.deployed"] == "true"
    assert [d.id for d in list_deployments()] == ["memory/churn"]


def test_an_alias_is_resolved_and_remembered(memory_provider: type[MemoryProvider]) -> None:
    register_model(versions=3)
    mltrack.set_alias("churn", "champion", 2)
    deployment = deploy("churn", "@champion", provider="memory", name="churn-prod")
    assert (deployment.model_version, deployment.alias, deployment.name) == (2, "champion", "churn-prod")


def test_an_unknown_provider_lists_the_installed_ones_and_the_extra_to_install(
    memory_provider: type[MemoryProvider],
) -> None:
    register_model()
    with pytest.raises(PluginError) as caught:
        deploy("churn", provider="sagemaker")
    assert "installed providers: local, memory" in str(caught.value)
    assert caught.value.hint == install_hint("sagemaker")
    assert "--find-links" in caught.value.hint and '"mltrack[sagemaker]==' in caught.value.hint
    with pytest.raises(PluginError, match="no deploy provider named 'acme'"):
        deploy("churn", provider="acme")


def test_an_invalid_config_names_every_bad_field_and_creates_nothing(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    with pytest.raises(InvalidInputError) as caught:
        deploy("churn", provider="memory", config={"replicas": 9, "gpu": "T4", "fail": "maybe"})
    message = str(caught.value)
    assert "replicas = 9" in message and "gpu = 'T4'" in message and "fail = 'maybe'" in message
    assert "accepts: fail, fail_while_creating, polls_until_ready, replicas, token, wait_s" in message
    assert memory_provider.steps == [] and list_deployments() == []


def test_missing_credentials_stop_the_deploy_before_anything_is_created(
    memory_provider: type[MemoryProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_model()
    monkeypatch.delenv("MLTRACK_PLUGINS__MEMORY__API_KEY")
    mltrack.configure()  # drop cached settings
    with pytest.raises(CredentialsMissingError, match="needs an API key") as caught:
        deploy("churn", provider="memory")
    assert caught.value.hint == "set MLTRACK_PLUGINS__MEMORY__API_KEY"
    assert memory_provider.steps == [] and list_deployments() == []


def test_an_unknown_model_or_version_fails_before_anything_is_created(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    with pytest.raises(mltrack.ModelNotFoundError, match="no registered model named 'nope'"):
        deploy("nope", provider="memory")
    with pytest.raises(mltrack.ModelNotFoundError, match="no version 7"):
        deploy("churn", 7, provider="memory")
    assert memory_provider.steps == []


def test_a_deployment_that_fails_while_starting_is_recorded_as_failed(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    with pytest.raises(DeploymentError, match="memory/churn failed: container exited 1") as caught:
        deploy("churn", provider="memory", config={"fail": True, "polls_until_ready": 1})
    assert caught.value.hint == "see `mltrack deployments logs memory/churn`"
    assert get_deployment("churn").state is DeploymentState.FAILED


def test_a_provider_error_while_creating_leaves_a_failed_record_not_a_pending_one(
    memory_provider: type[MemoryProvider],
) -> None:
    register_model()
    with pytest.raises(DeploymentError, match="refused the endpoint"):
        deploy("churn", provider="memory", config={"fail_while_creating": True})
    record = get_deployment("memory/churn")
    assert (record.state, record.message) == (DeploymentState.FAILED, "the target refused the endpoint")


def test_waiting_times_out_with_a_hint_and_the_record_stays_pending(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    with pytest.raises(DeployTimeoutError, match="still pending after 0 s") as caught:
        deploy("churn", provider="memory", config={"polls_until_ready": 10_000}, timeout=0.05)
    assert caught.value.hint is not None and "mltrack deployments status memory/churn" in caught.value.hint
    assert get_deployment("memory/churn").state is DeploymentState.PENDING


def test_a_plan_may_set_how_long_its_deploy_waits(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    start = time.monotonic()
    with pytest.raises(DeployTimeoutError, match="still pending after 0 s"):
        deploy("churn", provider="memory", config={"polls_until_ready": 10_000, "wait_s": 0.2})
    assert time.monotonic() - start < memory_provider.default_timeout_s


def test_no_wait_returns_the_pending_deployment_and_wait_finishes_it(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deployment = deploy("churn", provider="memory", config={"polls_until_ready": 2}, wait=False)
    assert deployment.state is DeploymentState.PENDING
    assert deployment.wait(timeout=5).state is DeploymentState.READY
    assert get_deployment("memory/churn").state is DeploymentState.READY


def test_redeploying_a_name_replaces_it_and_keeps_the_history(memory_provider: type[MemoryProvider]) -> None:
    register_model(versions=2)
    deploy("churn", 1, provider="memory")
    deploy("churn", 2, provider="memory")
    current = list_deployments()
    assert [(d.id, d.model_version, d.state) for d in current] == [("memory/churn", 2, DeploymentState.READY)]
    history = list_deployments(include_history=True)
    assert [(d.model_version, d.state, d.message) for d in history] == [
        (2, DeploymentState.READY, "in service"),
        (1, DeploymentState.DELETED, "replaced by v2"),
    ]
    assert plan_deployment("churn", 2, "memory").replaces is not None


def test_delete_is_idempotent_and_the_record_says_deleted(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deploy("churn", provider="memory")
    assert delete_deployment("memory/churn").state is DeploymentState.DELETED
    assert "churn" not in memory_provider.endpoints
    assert delete_deployment("memory/churn").state is DeploymentState.DELETED
    assert get_deployment("memory/churn").state is DeploymentState.DELETED


def test_refresh_reports_a_deployment_that_disappeared_as_failed(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deployment = deploy("churn", provider="memory")
    memory_provider.endpoints.clear()
    assert deployment.refresh().state is DeploymentState.FAILED
    assert get_deployment("memory/churn").message == "endpoint is gone"


def test_unknown_deployment_ids_list_what_exists(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deploy("churn", provider="memory")
    with pytest.raises(DeploymentNotFoundError, match="no deployment 'memory/other'") as caught:
        get_deployment("memory/other")
    assert caught.value.hint == "deployments: memory/churn"


def test_secrets_in_a_config_never_reach_the_record(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deploy("churn", provider="memory", config={"token": "s3cr3t"})
    tag = mltrack.list_versions("churn")[0].tags["mltrack.deployment.memory.churn"]
    assert "s3cr3t" not in tag and json.loads(tag)["config"]["token"] == "**********"


def test_predict_and_logs_go_through_the_provider(memory_provider: type[MemoryProvider]) -> None:
    register_model()
    deployment = deploy("churn", provider="memory")
    answer = deployment.predict([{"a": 1}], params={"k": 2})
    assert answer == {"echo": {"dataframe_records": [{"a": 1}], "params": {"k": 2}}, "version": 1}
    assert deployment.logs() == ["log of churn"]


def test_deployment_names_are_checked_and_default_to_the_model_name(memory_provider: type[MemoryProvider]) -> None:
    assert default_name("Churn Model_v2") == "churn-model-v2"
    register_model()
    with pytest.raises(InvalidInputError, match="name 'Bad_Name'"):
        deploy("churn", provider="memory", name="Bad_Name")


def test_a_provider_class_that_does_not_forbid_unknown_config_fields_is_refused() -> None:
    from mltrack.deployment.providers import validate_provider

    class Loose(BaseModel):
        x: int = 1

    class LooseProvider(MemoryProvider):
        name = "loose"
        DeploymentConfig = Loose  # type: ignore[assignment]  # deliberately not a MemoryConfig

    with pytest.raises(PluginError, match="DeploymentConfig must forbid unknown fields"):
        validate_provider(LooseProvider)
    with pytest.raises(PluginError, match=r"not a mltrack\.DeployProvider subclass"):
        validate_provider(object())


def test_the_local_provider_is_built_in() -> None:
    from mltrack.deployment.deployments import providers

    assert "local" in providers()


@pytest.mark.parametrize(
    ("data", "payload"),
    [
        ({"a": [1, 2], "b": [3, 4]}, {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 3], [2, 4]]}}),
        ([{"a": 1}], {"dataframe_records": [{"a": 1}]}),
        ([[1, 2]], {"inputs": [[1, 2]]}),
        ({"inputs": [1]}, {"inputs": [1]}),
    ],
)
def test_inputs_become_scoring_payloads(data: Any, payload: dict[str, Any]) -> None:
    assert to_scoring_payload(data) == payload


def test_a_dataframe_is_sent_split() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"x": [1.5, 2.0], "y": ["a", "b"]})
    assert to_scoring_payload(frame) == {"dataframe_split": {"columns": ["x", "y"], "data": [[1.5, "a"], [2.0, "b"]]}}
    assert to_scoring_payload(np.array([[1, 2]])) == {"inputs": [[1, 2]]}
    with pytest.raises(InvalidInputError, match="different lengths"):
        to_scoring_payload({"a": [1, 2], "b": [1]})


def test_cli_config_pairs_parse_as_json_with_dotted_sections() -> None:
    assert parse_config(("port=8011", "host=127.0.0.1", "env.DEBUG=1", "env.MODE=fast", "flag=true")) == {
        "port": 8011,
        "host": "127.0.0.1",
        "env": {"DEBUG": "1", "MODE": "fast"},
        "flag": True,
    }
    import click

    with pytest.raises(click.BadParameter, match="not KEY=VALUE"):
        parse_config(("port",))


def test_cli_plan_shows_the_steps_and_creates_nothing(sqlite_uri: str) -> None:
    from conftest import run_cli

    register_model()
    result = run_cli("deploy", "churn", "--plan", "--config", "port=8011", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["id"] == "local/churn" and plan["url"] == "http://127.0.0.1:8011"
    assert plan["config"]["port"] == 8011 and len(plan["actions"]) == 3
    assert json.loads(run_cli("deployments", "list", "--json").stdout) == []


def test_cli_bad_config_is_one_line_naming_the_field(sqlite_uri: str) -> None:
    from conftest import run_cli

    register_model()
    result = run_cli("deploy", "churn", "--config", "port=80", "--config", "gpu=T4")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: config ") and "port = 80" in lines[0] and "gpu = 'T4'" in lines[0]
    assert lines[1].startswith("Hint: 'local' accepts: ")
    not_installed = {"MLTRACK_DISABLE_PLUGINS": "broken-import,misspelled-hook,modal"}
    result = run_cli("deploy", "churn", "--provider", "modal", env=not_installed)
    assert "no deploy provider named 'modal'" in result.stderr and '"mltrack[modal]==' in result.stderr
