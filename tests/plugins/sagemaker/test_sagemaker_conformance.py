"""The ``sagemaker`` provider passes MLTrack's ``DeployProvider`` conformance suite, against AWS on
127.0.0.1 (moto, with its SageMaker gaps filled at the one seam in ``moto_gaps.py``)."""

# The fixtures are imported from aws_stand_in; tests name them as parameters (ruff: redefinitions).
# ruff: noqa: F811

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_stand_in import aws, execution_role, gaps, moto_url, sagemaker_settings  # noqa: F401  (fixtures)
from moto_gaps import SageMakerGaps

from mltrack.deployment.providers import DeployProvider
from mltrack.testing.providers import ProviderConformance
from mltrack_sagemaker.provider import SageMakerProvider


@contextlib.contextmanager
def no_aws_keys() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ACCESS_KEY_ID")
        patch.delenv("AWS_SECRET_ACCESS_KEY")
        yield


class TestSageMakerProvider(ProviderConformance):
    def provider_class(self) -> type[DeployProvider]:
        return SageMakerProvider

    def valid_config(self) -> dict[str, Any]:
        return {"instance_type": "ml.m5.large"}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [
            ({"instance_count": 0}, "instance_count"),
            ({"instance_type": "m5.large"}, "instance_type"),
            ({"execution_role_arn": "my-role"}, "execution_role_arn"),
            ({"region": "Europe"}, "region"),
            ({"bucket": "Not_A_Bucket"}, "bucket"),
            ({"serverless": {"memory_size_mb": 1000}}, "memory_size_mb"),
            ({"serverless": {"max_concurrency": 2, "provisioned_concurrency": 3}}, "provisioned_concurrency"),
            ({"serverless": {}, "instance_count": 2}, "instance_count"),
            ({"variant_name": "all traffic"}, "variant_name"),
            ({"tags": {"aws:team": "x"}}, "tags"),
            ({"wait_timeout": 0}, "wait_timeout"),
        ]

    def remove_credentials(self) -> contextlib.AbstractContextManager[None] | None:
        return no_aws_keys()

    def target_snapshot(self, provider: DeployProvider) -> Any:
        sagemaker = boto3.client("sagemaker")
        return {
            "endpoints": [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]],
            "configs": [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]],
            "models": [m["ModelName"] for m in sagemaker.list_models()["Models"]],
            "buckets": [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]],
        }

    def deploy_timeout_s(self) -> float:
        return 60.0

    @pytest.fixture(autouse=True)
    def _aws_on_localhost(self, sagemaker_settings: dict[str, Any], gaps: SageMakerGaps) -> None:
        """moto for AWS; the team-wide settings (role, image, polling) come from the environment."""
