"""Deploying with the ``modal`` provider.

With a token configured, Modal's deploy is the one faked seam: ``modal.runner.deploy_app`` is
replaced by ``FakeModalCloud.deploy_app`` (see modal_cloud.py), which serves the real App's
endpoint (Modal's ``.local()``) on 127.0.0.1 and returns a real ``DeployResult``. Everything else
runs for real: the store, the App the provider builds, status and predictions over HTTP. Modal's app
lookup and stop (``delete``, ``list``, recent log lines) are not faked: without a token they raise
the credentials error, which is tested here for real; with one they need Modal's API, which the live
test (test_modal_live.py) exercises.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import run_python
from modal_cloud import FakeModalCloud, modal_cloud, remove_modal_token

import mltrack
from mltrack.deployment.deployments import (
    delete_deployment,
    get_deployment,
    get_provider,
    list_deployments,
    plan_deployment,
)
from mltrack.deployment.providers import DeploymentState, DeployProvider
from mltrack.errors import CredentialsMissingError, DeploymentError, InvalidInputError
from mltrack.testing.providers import ProviderConformance, overrides_standard_test
from mltrack_modal.provider import ModalProvider

ROWS = [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


class ScaledSum:
    """``factor * (x + y)`` per row."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, rows: Any) -> list[float]:
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else rows  # a DataFrame, or the example
        return [self.factor * (row["x"] + row["y"]) for row in records]


def register(name: str, factor: float) -> int:
    with mltrack.start_run():
        info = mltrack.log_model(ScaledSum(factor), "model", input_example=ROWS[:1])
    return mltrack.register_model(info.model_uri, name)


class Steps:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def advance(self, done: float, total: float | None = None) -> None:
        pass


@pytest.fixture
def cloud(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModalCloud]:
    register("my-model", 3.0)
    with modal_cloud(monkeypatch) as fake:
        yield fake


def test_the_spec_example_deploys_and_returns_the_endpoint_url(cloud: FakeModalCloud) -> None:
    deployment = mltrack.deploy(model_name="my-model", provider="modal", config={"gpu": "T4"})
    assert deployment.state is DeploymentState.READY, deployment.message
    deployed = cloud.apps["mltrack-my-model"]
    assert deployment.url == deployed.url  # the URL Modal gave the endpoint function
    (call,) = cloud.calls
    assert (call["name"], call["environment"], call["tag"]) == ("mltrack-my-model", None, "mltrack-v1")
    assert call["app"].name == "mltrack-my-model"
    details = get_deployment("modal/my-model").details
    assert details["app_id"] == deployed.app_id and details["app_name"] == "mltrack-my-model"
    assert details["app_logs_url"].startswith("https://modal.com/apps/")
    assert deployment.predict(ROWS) == pytest.approx([9.0, 21.0])


def test_without_a_token_the_spec_example_fails_with_the_credentials_error(sqlite_uri: str, tmp_path: Any) -> None:
    # a fresh interpreter, as a user would run it: no token in the environment or in a Modal profile
    code = (
        "import json, mltrack\n"
        "mltrack.register_model(lambda rows: [0] * len(rows), 'my-model')\n"
        "try:\n"
        "    mltrack.deploy(model_name='my-model', provider='modal', config={'gpu': 'T4'})\n"
        "except Exception as exc:\n"
        "    print(json.dumps([type(exc).__name__, exc.message, exc.hint]))\n"
        "print(json.dumps(len(mltrack.list_deployments())))\n"
    )
    env = {"MODAL_CONFIG_PATH": str(tmp_path / "no-profile.toml"), "MODAL_TOKEN_ID": "", "MODAL_TOKEN_SECRET": ""}
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    error, recorded = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert error[0] == "CredentialsMissingError" and "Modal needs an API token to deploy" in error[1]
    assert "modal token new" in error[2] and "MODAL_TOKEN_ID" in error[2] and "MODAL_TOKEN_SECRET" in error[2]
    assert recorded == 0


def test_modals_own_refusal_without_a_token_becomes_the_credentials_error(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register("my-model", 3.0)
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-only-for-planning")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-only-for-planning")
    plan = plan_deployment("my-model", 1, "modal")
    remove_modal_token(monkeypatch)
    # past the provider's own check: the real modal.runner.deploy_app raises AuthError at once
    with pytest.raises(CredentialsMissingError, match="Modal refused to deploy the app 'mltrack-my-model'") as caught:
        get_provider("modal").deploy(plan, Steps())
    assert caught.value.hint == "run `modal token new`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"


def test_an_invalid_config_is_refused_before_modal_is_called(cloud: FakeModalCloud) -> None:
    with pytest.raises(InvalidInputError, match="unknown Modal GPU 'bogus'"):
        mltrack.deploy(model_name="my-model", provider="modal", config={"gpu": "bogus"})
    assert cloud.calls == [] and list_deployments() == []


def test_an_error_from_modals_deploy_is_reported_and_recorded_as_failed(
    cloud: FakeModalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modal.exception import RemoteError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RemoteError("Image build for im-123 failed with the exception:\npip install exited with 1")

    import modal.runner

    monkeypatch.setattr(modal.runner, "deploy_app", refuse)  # Modal's deploy failing: the same seam
    with pytest.raises(DeploymentError, match="Modal could not deploy the app 'mltrack-my-model': Image build"):
        mltrack.deploy(model_name="my-model", provider="modal")
    record = get_deployment("modal/my-model")
    assert record.state is DeploymentState.FAILED and "Image build" in record.message


def test_redeploying_rolls_the_same_app_keeps_the_url_and_serves_the_new_version(cloud: FakeModalCloud) -> None:
    register("my-model", 5.0)
    first = mltrack.deploy(model_name="my-model", version=1, provider="modal")
    second = mltrack.deploy(model_name="my-model", version=2, provider="modal")
    assert second.url == first.url and [c["tag"] for c in cloud.calls] == ["mltrack-v1", "mltrack-v2"]
    assert second.predict(ROWS) == pytest.approx([15.0, 35.0])
    assert [(d.id, d.model_version) for d in list_deployments()] == [("modal/my-model", 2)]
    assert any(a.startswith("replace v2 in place") for a in plan_deployment("my-model", 2, "modal").actions)


def test_status_comes_from_the_endpoint_and_needs_no_token(
    cloud: FakeModalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = mltrack.deploy(model_name="my-model", provider="modal", config={"startup_timeout_s": 0.5})
    remove_modal_token(monkeypatch)
    provider = get_provider("modal")
    assert provider.status(deployment).state is DeploymentState.READY
    cloud.stop("mltrack-my-model")  # the app's endpoint stops answering
    time.sleep(0.6)  # past the startup window: no answer now means failed, not starting
    status = provider.status(deployment)
    assert status.state is DeploymentState.FAILED and "does not answer" in status.message
    assert deployment.refresh().state is DeploymentState.FAILED


def test_delete_and_list_need_a_token_and_say_how_to_set_one(
    cloud: FakeModalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    mltrack.deploy(model_name="my-model", provider="modal")
    remove_modal_token(monkeypatch)
    with pytest.raises(CredentialsMissingError, match="to stop the app of modal/my-model") as caught:
        delete_deployment("modal/my-model")
    assert caught.value.hint is not None and "modal token new" in caught.value.hint
    assert get_deployment("modal/my-model").state is DeploymentState.READY  # nothing was marked deleted
    with pytest.raises(CredentialsMissingError, match="to list its apps"):
        get_provider("modal").list()


def test_logs_give_the_modal_logs_url_and_say_what_recent_lines_need(
    cloud: FakeModalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = mltrack.deploy(model_name="my-model", provider="modal")
    remove_modal_token(monkeypatch)
    lines = deployment.logs(tail=20)
    assert lines[0] == f"Modal logs: {deployment.details['app_logs_url']}"
    assert "need a Modal token" in lines[1]


def test_deploy_reports_its_steps(cloud: FakeModalCloud) -> None:
    steps = Steps()
    mltrack.deploy(model_name="my-model", provider="modal", progress=steps)
    assert steps.steps[0] == "downloading models:/my-model/1"
    assert any(s.startswith("deploying the Modal app 'mltrack-my-model'") for s in steps.steps)
    assert steps.steps[-1] == "waiting for modal/my-model to become ready"


class TestModalProviderConformance(ProviderConformance):
    """MLTrack's provider conformance suite, with Modal's deploy faked at the one seam."""

    def provider_class(self) -> type[DeployProvider]:
        return ModalProvider

    def valid_config(self) -> dict[str, Any]:
        return {"gpu": "T4", "max_containers": 2, "scaledown_window": 120}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"gpu": "V100"}, "gpu"),
            ({"gpu": "H100:9"}, "gpu"),
            ({"gpu": ["T4", "T4"]}, "gpu"),
            ({"min_containers": -1}, "min_containers"),
            ({"min_containers": 3, "max_containers": 2}, "max_containers"),
            ({"scaledown_window": 1}, "scaledown_window"),
            ({"app_name": "Bad_Name"}, "app_name"),
        ]

    def remove_credentials(self) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def without_token() -> Iterator[None]:
            with pytest.MonkeyPatch.context() as patch:
                remove_modal_token(patch)
                yield

        return without_token()

    def target_snapshot(self, provider: DeployProvider) -> Any:
        # the fake cloud is the target here; ``list`` asks Modal's API, which the seam does not cover
        return sorted(self.cloud.apps)

    @pytest.fixture(autouse=True)
    def _target(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        with modal_cloud(monkeypatch) as cloud:
            self.cloud = cloud
            yield
            # the suite's teardown deletes what is left: without a token that fails at once
            # instead of reaching for Modal's API
            remove_modal_token(monkeypatch)

    @overrides_standard_test(
        "stopping a Modal app needs Modal's API, which is not faked: the cycle runs up to delete, "
        "delete's no-token path is checked for real, and the live test covers a real delete"
    )
    def test_deploy_predict_logs_and_delete(self) -> None:
        deployment = self.deploy(1)
        assert deployment.state is DeploymentState.READY, deployment.message
        assert deployment.url
        assert self.provider().status(deployment).state is DeploymentState.READY
        assert self.as_list(deployment.predict([{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}])) == pytest.approx(
            self.expected(1)
        )
        with pytest.MonkeyPatch.context() as patch:
            remove_modal_token(patch)  # the made-up token would send the recent-lines request to Modal
            logs = deployment.logs(tail=20)
            assert isinstance(logs, list) and all(isinstance(line, str) for line in logs)
            with pytest.raises(CredentialsMissingError):
                delete_deployment(deployment.id)
        self.cloud.stop(str(deployment.details["app_name"]))  # what a stop does to the endpoint
        assert self.provider().status(get_deployment(deployment.id)).state is not DeploymentState.READY
