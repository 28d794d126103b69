"""The ``sagemaker`` provider against AWS on 127.0.0.1 (moto), driven through ``mltrack.deploy``.

Every AWS call is real HTTP to a moto server: S3, IAM, STS, ECR, CloudWatch Logs and SageMaker's
models, endpoint configs, endpoints and tags. moto's three gaps (``UpdateEndpoint``, status
transitions, ``InvokeEndpoint``) are filled at one seam, ``moto_gaps.SageMakerGaps``: predictions
come from the real container entrypoint serving the uploaded ``model.tar.gz``.
"""

# The fixtures are imported from aws_stand_in (see there why not a conftest.py); tests name them as
# parameters, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import io
import tarfile
from typing import Any

import boto3
import pytest
from aws_stand_in import (  # noqa: F401  (fixtures)
    ACCOUNT,
    IMAGE,
    REGION,
    aws,
    credentials_checked,
    execution_role,
    gaps,
    moto_url,
    no_aws_configuration,
    register_doubling_model,
    sagemaker_settings,
)
from moto_gaps import SageMakerGaps

import mltrack
from mltrack.deployment.deployments import delete_deployment, deploy, get_deployment, list_deployments, plan_deployment
from mltrack.deployment.providers import DeploymentState
from mltrack.errors import ConfigError, CredentialsMissingError, DeploymentError, InvalidInputError

BUCKET = f"mltrack-sagemaker-{REGION}-{ACCOUNT}"


class Steps:
    """A ``Progress`` that remembers what it was told."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.advances: list[tuple[float, float | None]] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def advance(self, done: float, total: float | None = None) -> None:
        self.advances.append((done, total))


def sagemaker() -> Any:
    return boto3.client("sagemaker")


def names(kind: str) -> list[str]:
    client = sagemaker()
    if kind == "models":
        return sorted(m["ModelName"] for m in client.list_models()["Models"])
    if kind == "configs":
        return sorted(c["EndpointConfigName"] for c in client.list_endpoint_configs()["EndpointConfigs"])
    return sorted(e["EndpointName"] for e in client.list_endpoints()["Endpoints"])


@pytest.fixture
def model(sqlite_uri: str, sagemaker_settings: dict[str, Any]) -> str:
    register_doubling_model("my-model")
    return "my-model"


def test_the_spec_example_deploys_and_serves_predictions(model: str, gaps: SageMakerGaps) -> None:
    deployment = mltrack.deploy(model_name="my-model", provider="sagemaker", config={"instance_type": "ml.m5.large"})

    assert deployment.state is DeploymentState.READY, deployment.message
    assert deployment.id == "sagemaker/my-model"
    assert deployment.url == f"https://runtime.sagemaker.{REGION}.amazonaws.com/endpoints/my-model/invocations"
    assert deployment.predict({"x": [1.0, 2.5]}) == [2.0, 5.0]
    assert gaps.invocations == [("my-model", f"s3://{BUCKET}/mltrack/my-model/v1/model.tar.gz")]


def test_deploy_creates_the_model_config_and_endpoint_with_tags(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(model, provider="sagemaker", config={"instance_count": 2, "tags": {"team": "risk"}})

    endpoint = sagemaker().describe_endpoint(EndpointName="my-model")
    config = sagemaker().describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        2,
    )
    created = sagemaker().describe_model(ModelName=variant["ModelName"])
    assert created["PrimaryContainer"]["Image"] == IMAGE
    assert created["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/mltrack/my-model/v1/model.tar.gz"
    assert created["ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/mltrack-sagemaker"
    tags = {t["Key"]: t["Value"] for t in sagemaker().list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    assert tags == {
        "team": "risk",
        "mltrack:managed": "true",
        "mltrack:deployment": "my-model",
        "mltrack:model": "my-model",
        "mltrack:version": "1",
    }
    assert deployment.details["endpoint_config"] == endpoint["EndpointConfigName"] == variant["ModelName"]
    assert variant["ModelName"].startswith("my-model-v1-")


def test_model_tar_gz_in_s3_is_the_mlflow_model_directory_at_its_root(model: str, gaps: SageMakerGaps) -> None:
    deploy(model, provider="sagemaker")

    body = boto3.client("s3").get_object(Bucket=BUCKET, Key="mltrack/my-model/v1/model.tar.gz")
    assert body["Metadata"]["sha256"]
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read()), mode="r:gz") as archive:
        members = archive.getnames()
    assert "MLmodel" in members and "requirements.txt" in members and "python_model.pkl" in members
    assert not any(name.startswith(("/", "..")) for name in members)


def test_deploy_reports_progress_and_waits_while_the_endpoint_is_creating(model: str, gaps: SageMakerGaps) -> None:
    gaps.pending_polls = 3
    steps = Steps()

    deployment = deploy(model, provider="sagemaker", progress=steps)

    assert deployment.state is DeploymentState.READY
    joined = "\n".join(steps.steps)
    for expected in ("packaging", "uploading model.tar.gz", "creating the SageMaker model", "creating the endpoint"):
        assert expected in joined
    assert "waiting for sagemaker/my-model to become ready" in joined
    uploaded = [done for done, total in steps.advances if total and total > 100]
    assert uploaded and uploaded[-1] > 0  # bytes uploaded were reported
    assert gaps.scripts["my-model"] == []  # every Creating answer was polled through


def test_no_wait_returns_pending_and_the_status_follows_the_endpoint(model: str, gaps: SageMakerGaps) -> None:
    gaps.pending_polls = 2
    deployment = deploy(model, provider="sagemaker", wait=False)
    assert deployment.state is DeploymentState.PENDING
    assert deployment.refresh().message == "the endpoint is Creating"
    assert deployment.wait(timeout=30).state is DeploymentState.READY


def test_a_failed_endpoint_is_reported_with_sagemakers_failure_reason(model: str, gaps: SageMakerGaps) -> None:
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    gaps.fail_creation("my-model", reason)

    with pytest.raises(DeploymentError) as caught:
        deploy(model, provider="sagemaker")

    assert f"sagemaker/my-model failed: the endpoint my-model is Failed: {reason}" in caught.value.message
    assert caught.value.hint == "see `mltrack deployments logs sagemaker/my-model`"
    assert get_deployment("sagemaker/my-model").state is DeploymentState.FAILED


def test_waiting_gives_up_after_wait_timeout_and_the_endpoint_goes_on(model: str, gaps: SageMakerGaps) -> None:
    gaps.pending_polls = 10_000
    with pytest.raises(mltrack.errors.DeployTimeoutError, match="still pending"):
        deploy(model, provider="sagemaker", config={"wait_timeout": 0.3})
    assert get_deployment("sagemaker/my-model").state is DeploymentState.PENDING
    assert names("endpoints") == ["my-model"]


def test_redeploying_updates_the_endpoint_and_deletes_the_superseded_model_and_config(
    model: str, gaps: SageMakerGaps
) -> None:
    first = deploy(model, provider="sagemaker")
    register_doubling_model("my-model")
    second = deploy(model, provider="sagemaker")

    assert second.state is DeploymentState.READY
    assert gaps.updates == [("my-model", second.details["endpoint_config"])]
    assert names("endpoints") == ["my-model"]
    # the old model and config are gone once the new one serves; the new ones stay
    assert names("configs") == [second.details["endpoint_config"]] != [first.details["endpoint_config"]]
    assert names("models") == [second.details["model"]]
    assert [(d.id, d.model_version) for d in list_deployments()] == [("sagemaker/my-model", 2)]
    assert second.predict({"x": [3.0]}) == [6.0]
    assert gaps.invocations[-1][1].endswith("/v2/model.tar.gz")


def test_a_failed_update_rolls_back_and_is_reported(model: str, gaps: SageMakerGaps) -> None:
    first = deploy(model, provider="sagemaker")
    register_doubling_model("my-model")
    gaps.fail_update("my-model", "Image not found")

    with pytest.raises(DeploymentError, match="Image not found") as caught:
        deploy(model, provider="sagemaker")

    assert f"serves the config {first.details['endpoint_config']}" in caught.value.message
    endpoint = sagemaker().describe_endpoint(EndpointName="my-model")
    assert endpoint["EndpointConfigName"] == first.details["endpoint_config"]  # version 1 still serves


def test_plan_shows_what_would_be_created_and_creates_nothing(model: str, gaps: SageMakerGaps) -> None:
    plan = plan_deployment(model, provider="sagemaker", config={"serverless": {"memory_size_mb": 4096}})

    text = "\n".join(plan.actions)
    assert f"serve with the image {IMAGE}" in text
    assert f"upload it to s3://{BUCKET}/mltrack/my-model/v1/model.tar.gz (the bucket is created if missing)" in text
    assert "serverless, 4096 MB, up to 5 concurrent invocations" in text
    assert "create the endpoint my-model" in text
    assert plan.resources["serverless"] == {
        "memory_size_mb": 4096,
        "max_concurrency": 5,
        "provisioned_concurrency": None,
    }
    assert names("endpoints") == names("models") == names("configs") == []
    assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_serverless_endpoint_gets_a_serverless_config(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(
        model,
        provider="sagemaker",
        config={"serverless": {"memory_size_mb": 3072, "max_concurrency": 8, "provisioned_concurrency": 2}},
    )
    config = sagemaker().describe_endpoint_config(EndpointConfigName=deployment.details["endpoint_config"])
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 8, "ProvisionedConcurrency": 2}
    assert "InstanceType" not in variant


def test_delete_removes_endpoint_config_and_model_and_is_idempotent(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(model, provider="sagemaker")
    steps = Steps()

    deleted = delete_deployment(deployment.id, progress=steps)

    assert deleted.state is DeploymentState.DELETED
    assert names("endpoints") == names("configs") == names("models") == []
    assert any("deleting the endpoint my-model" in s for s in steps.steps)
    assert delete_deployment(deployment.id).state is DeploymentState.DELETED
    # the provider itself also deletes what is already gone without complaint
    assert (
        mltrack.deployment.deployments.get_provider("sagemaker").delete(deployment, steps).state
        is DeploymentState.DELETED
    )


def test_an_endpoint_deleted_outside_mltrack_shows_as_failed(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(model, provider="sagemaker")
    sagemaker().delete_endpoint(EndpointName="my-model")
    refreshed = deployment.refresh()
    assert refreshed.state is DeploymentState.FAILED
    assert refreshed.message == "the endpoint my-model does not exist (deleted outside MLTrack?)"


def test_list_finds_mltrack_endpoints_and_ignores_others(model: str, gaps: SageMakerGaps, execution_role: str) -> None:
    deploy(model, provider="sagemaker")
    client = sagemaker()
    client.create_model(ModelName="other", ExecutionRoleArn=execution_role, PrimaryContainer={"Image": IMAGE})
    client.create_endpoint_config(
        EndpointConfigName="other",
        ProductionVariants=[
            {"VariantName": "A", "ModelName": "other", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    client.create_endpoint(EndpointName="other", EndpointConfigName="other")

    found = mltrack.deployment.deployments.get_provider("sagemaker").list()

    assert [(s.details["name"], s.details["model_version"], s.state) for s in found] == [
        ("my-model", "1", DeploymentState.READY)
    ]


def test_an_endpoint_of_the_same_name_not_made_by_mltrack_is_not_touched(
    model: str, gaps: SageMakerGaps, execution_role: str
) -> None:
    client = sagemaker()
    client.create_model(ModelName="theirs", ExecutionRoleArn=execution_role, PrimaryContainer={"Image": IMAGE})
    client.create_endpoint_config(
        EndpointConfigName="theirs",
        ProductionVariants=[
            {"VariantName": "A", "ModelName": "theirs", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
        ],
    )
    client.create_endpoint(EndpointName="my-model", EndpointConfigName="theirs")

    with pytest.raises(DeploymentError, match="already exists in us-east-1 and was not created by MLTrack") as caught:
        deploy(model, provider="sagemaker")

    assert caught.value.hint == "deploy under another name (name=...) or delete that endpoint"
    assert names("configs") == ["theirs"] and list_deployments() == []


def test_a_bucket_that_does_not_exist_fails_the_deploy_and_leaves_nothing_behind(
    model: str, gaps: SageMakerGaps
) -> None:
    with pytest.raises(DeploymentError, match="s3://not-there-bucket/"):
        deploy(model, provider="sagemaker", config={"bucket": "not-there-bucket"})
    assert names("endpoints") == names("configs") == names("models") == []
    assert get_deployment("sagemaker/my-model").state is DeploymentState.FAILED


def test_a_redeploy_of_the_same_bytes_skips_the_upload(model: str, gaps: SageMakerGaps) -> None:
    deploy(model, provider="sagemaker")
    steps = Steps()
    deploy(model, provider="sagemaker", name="my-model-canary", progress=steps)
    assert any("already holds this model.tar.gz" in s for s in steps.steps)
    assert not any(s.startswith("uploading") for s in steps.steps)


def test_logs_come_from_the_endpoints_cloudwatch_log_group(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(model, provider="sagemaker")
    assert deployment.logs() == []  # no log group until the container has written something
    deployment.predict({"x": [1.0]})

    lines = deployment.logs(tail=200)

    assert any("mltrack-sagemaker: serving" in line for line in lines), lines
    assert all("[AllTraffic/i-local" in line for line in lines)
    assert len(deployment.logs(tail=1)) == 1


def test_input_the_model_refuses_is_an_input_error_naming_the_problem(model: str, gaps: SageMakerGaps) -> None:
    deployment = deploy(model, provider="sagemaker")
    with pytest.raises(InvalidInputError, match="was refused by sagemaker/my-model") as caught:
        deployment.predict({"not_x": [1.0]})
    assert "missing column(s) 'x'" in caught.value.message


# -- credentials and configuration ----------------------------------------------------------------


def test_without_credentials_the_spec_example_fails_with_what_to_set(
    sqlite_uri: str, aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    register_doubling_model("my-model")
    no_aws_configuration(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    with pytest.raises(CredentialsMissingError) as caught:
        mltrack.deploy(model_name="my-model", provider="sagemaker", config={"instance_type": "ml.m5.large"})

    assert caught.value.message == "no AWS credentials found for SageMaker (region: eu-west-1)"
    assert caught.value.hint is not None
    for needed in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "aws configure", "AWS_REGION"):
        assert needed in caught.value.hint
    assert list_deployments() == []


def test_without_a_region_the_error_says_where_to_set_one(
    sqlite_uri: str, sagemaker_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_doubling_model("my-model")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(CredentialsMissingError, match="no AWS region is set for SageMaker") as caught:
        deploy("my-model", provider="sagemaker")
    assert caught.value.hint is not None and "AWS_REGION" in caught.value.hint
    assert list_deployments() == []
    # the region may come with the deployment instead
    plan = plan_deployment("my-model", provider="sagemaker", config={"region": "us-east-1"})
    assert plan.resources["region"] == "us-east-1"


def test_rejected_credentials_are_a_credentials_error_too(
    sqlite_uri: str, sagemaker_settings: dict[str, Any], credentials_checked: None
) -> None:
    register_doubling_model("my-model")
    with pytest.raises(CredentialsMissingError, match="AWS rejected the credentials while checking") as caught:
        deploy("my-model", provider="sagemaker")
    assert caught.value.hint is not None and "AWS_ACCESS_KEY_ID" in caught.value.hint
    assert list_deployments() == []


def test_a_missing_execution_role_is_a_config_error_naming_the_field(
    sqlite_uri: str, sagemaker_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_doubling_model("my-model")
    monkeypatch.delenv("MLTRACK_PLUGINS__SAGEMAKER__EXECUTION_ROLE_ARN")
    mltrack.configure()

    with pytest.raises(ConfigError, match="execution_role_arn") as caught:
        deploy("my-model", provider="sagemaker")

    assert caught.value.hint is not None and "MLTRACK_PLUGINS__SAGEMAKER__EXECUTION_ROLE_ARN" in caught.value.hint
    assert list_deployments() == [] and names("models") == []


def test_without_an_image_and_without_docker_the_deploy_stops_before_creating_anything(
    sqlite_uri: str, sagemaker_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_doubling_model("my-model")
    monkeypatch.delenv("MLTRACK_PLUGINS__SAGEMAKER__IMAGE_URI")
    monkeypatch.setenv("MLTRACK_PLUGINS__SAGEMAKER__DOCKER", "docker-that-is-not-installed")
    mltrack.configure()

    with pytest.raises(DeploymentError, match="cannot build the SageMaker serving image here") as caught:
        deploy("my-model", provider="sagemaker")

    assert caught.value.hint is not None and "image_uri" in caught.value.hint
    assert list_deployments() == [] and names("models") == []


def test_an_image_already_in_ecr_is_used_without_docker(
    sqlite_uri: str, sagemaker_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_doubling_model("my-model")
    monkeypatch.delenv("MLTRACK_PLUGINS__SAGEMAKER__IMAGE_URI")
    monkeypatch.setenv("MLTRACK_PLUGINS__SAGEMAKER__DOCKER", "docker-that-is-not-installed")
    mltrack.configure()
    ecr = boto3.client("ecr")
    ecr.create_repository(repositoryName="mltrack-serving")
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}'
    ecr.put_image(repositoryName="mltrack-serving", imageManifest=manifest, imageTag="my-model-v1")

    plan = plan_deployment("my-model", provider="sagemaker")

    assert plan.resources["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mltrack-serving:my-model-v1"
    assert plan.resources["build_image"] is False


def test_moving_a_deployment_to_another_region_is_refused_so_the_old_endpoint_is_not_forgotten(
    model: str, gaps: SageMakerGaps
) -> None:
    deploy(model, provider="sagemaker")
    with pytest.raises(DeploymentError, match="runs in us-east-1; deploying it to eu-west-1") as caught:
        deploy(model, provider="sagemaker", config={"region": "eu-west-1"})
    assert caught.value.hint == (
        "delete it first (`mltrack deployments delete sagemaker/my-model`) or deploy under another name"
    )
    assert get_deployment("sagemaker/my-model").state is DeploymentState.READY
