"""``mltrack deploy --provider sagemaker`` and ``mltrack deployments ...`` from the shell, against AWS on
127.0.0.1 (the CLI runs as a separate process; the moto server and its seam run in this one)."""

# The fixtures are imported from aws_stand_in; tests name them as parameters (ruff: redefinitions).
# ruff: noqa: F811

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_stand_in import (  # noqa: F401  (fixtures)
    IMAGE,
    aws,
    execution_role,
    gaps,
    moto_url,
    no_aws_configuration,
    register_doubling_model,
    sagemaker_settings,
)
from conftest import run_cli
from moto_gaps import SageMakerGaps


@pytest.fixture
def model(sqlite_uri: str, sagemaker_settings: dict[str, Any]) -> str:
    register_doubling_model("my-model")
    return "my-model"


def test_plan_prints_the_steps_as_json_and_creates_nothing(model: str, gaps: SageMakerGaps) -> None:
    result = run_cli("deploy", "my-model", "-p", "sagemaker", "--plan", "--json", "-c", "instance_count=2")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["id"] == "sagemaker/my-model" and plan["config"]["instance_count"] == 2
    assert plan["resources"]["image"] == IMAGE and plan["resources"]["update"] is False
    assert any("2 x ml.m5.large" in action for action in plan["actions"])
    assert json.loads(run_cli("deployments", "list", "--json").stdout) == []


def test_deploy_predict_logs_and_delete_from_the_shell(model: str, gaps: SageMakerGaps) -> None:
    deployed = run_cli("deploy", "my-model", "--provider", "sagemaker", "--config", "instance_type=ml.m5.large")
    assert deployed.returncode == 0, deployed.stderr

    predicted = run_cli("deployments", "predict", "sagemaker/my-model", "--data", '{"x": [1.0, 2.0]}')
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout) == [2.0, 4.0]
    logs = run_cli("deployments", "logs", "sagemaker/my-model", "--tail", "5")
    assert logs.returncode == 0 and "[AllTraffic/i-local" in logs.stdout
    deleted = run_cli("deployments", "delete", "sagemaker/my-model", "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(run_cli("deployments", "list", "--json").stdout)[0]["state"] == "deleted"


def test_without_credentials_the_cli_prints_one_error_line_and_what_to_set(
    model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_aws_configuration(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")

    result = run_cli("deploy", "my-model", "--provider", "sagemaker", "--config", "instance_type=ml.m5.large")

    assert result.returncode == 1
    error, hint = result.stderr.strip().splitlines()[-2:]
    assert error == "Error: no AWS credentials found for SageMaker (region: eu-central-1)"
    assert hint.startswith("Hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws conf")


def test_plan_works_before_aws_is_set_up_and_says_what_it_could_not_look_up(
    model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_aws_configuration(monkeypatch, tmp_path)

    result = run_cli("deploy", "my-model", "--provider", "sagemaker", "--plan")

    assert result.returncode == 0, result.stderr
    assert "(planned without AWS: no AWS credentials found for SageMaker (region: not set);" in result.stdout
    assert "create the endpoint my-model" in result.stdout
    assert "s3://mltrack-sagemaker-<region>-123456789012/mltrack/my-model/v1/model.tar.gz" in result.stdout
