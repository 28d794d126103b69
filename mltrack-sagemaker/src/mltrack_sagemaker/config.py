"""What a SageMaker deployment can be told: provider-wide settings and per-deployment config.

``SageMakerSettings`` is ``[tool.mltrack.plugins.sagemaker]`` (or ``MLTRACK_PLUGINS__SAGEMAKER__*``):
what is the same for every deployment of a team (region, role, bucket, image). Per-deployment
``config=`` values win over it. Names and limits follow SageMaker's own API, so a bad value fails
here, before anything is created, instead of minutes later at AWS.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: SageMaker's pattern for endpoint, endpoint config, model and variant names
RESOURCE_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"
REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
INSTANCE_TYPE = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
#: tag keys MLTrack sets itself; users may not set them
OWN_TAG_PREFIX = "mltrack:"
#: SageMaker accepts 50 tags per resource; MLTrack sets 4 of them
MAX_USER_TAGS = 46


class ServerlessConfig(BaseModel):
    """A serverless endpoint: billed per request, scales to zero, CPU only."""

    model_config = ConfigDict(extra="forbid")

    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(
        2048, description="memory per concurrent invocation (MB); vCPUs scale with it"
    )
    max_concurrency: int = Field(5, ge=1, le=200, description="concurrent invocations before requests are throttled")
    provisioned_concurrency: int | None = Field(
        None, ge=1, le=200, description="invocations kept warm (no cold starts; billed while idle)"
    )

    @model_validator(mode="after")
    def _provisioned_within_max(self) -> ServerlessConfig:
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"provisioned_concurrency ({self.provisioned_concurrency}) "
                f"exceeds max_concurrency ({self.max_concurrency})"
            )
        return self


class SageMakerDeploymentConfig(BaseModel):
    """One SageMaker deployment (``mltrack.deploy(..., provider="sagemaker", config={...})``)."""

    model_config = ConfigDict(extra="forbid")

    instance_type: str = Field(
        "ml.m5.large", pattern=INSTANCE_TYPE, description="instance type of a real-time endpoint"
    )
    instance_count: int = Field(1, ge=1, le=100, description="instances behind a real-time endpoint")
    execution_role_arn: str | None = Field(
        None,
        pattern=ROLE_ARN,
        description="IAM role SageMaker assumes to pull the image and model (default: the settings' role)",
    )
    region: str | None = Field(
        None, pattern=REGION, description="AWS region (default: settings, then AWS_REGION / the AWS profile)"
    )
    bucket: str | None = Field(
        None,
        pattern=BUCKET,
        description="S3 bucket for model.tar.gz (default: settings, then `mltrack-sagemaker-<region>-<account>`)",
    )
    image_uri: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="serving image in ECR (default: settings, else one is built with Docker and pushed)",
    )
    serverless: ServerlessConfig | None = Field(None, description="deploy a serverless endpoint instead of instances")
    variant_name: str = Field("AllTraffic", pattern=RESOURCE_NAME, description="production variant name")
    tags: dict[str, str] = Field(default_factory=dict, description="AWS tags on the model, config and endpoint")
    wait_timeout: float = Field(
        1800.0, gt=0, le=4 * 3600, description="seconds to wait for InService before giving up waiting"
    )

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_USER_TAGS:
            raise ValueError(f"has {len(tags)} tags; at most {MAX_USER_TAGS} (SageMaker allows 50, MLTrack sets 4)")
        for key, value in tags.items():
            if not 1 <= len(key) <= 128 or key.lower().startswith(("aws:", OWN_TAG_PREFIX)):
                raise ValueError(f"tag key {key!r} must be 1-128 characters, not starting with 'aws:' or 'mltrack:'")
            if len(value) > 256:
                raise ValueError(f"tag {key!r}: values are at most 256 characters")
        return tags

    @model_validator(mode="after")
    def _serverless_has_no_instances(self) -> SageMakerDeploymentConfig:
        if self.serverless is not None:
            given = sorted({"instance_type", "instance_count"} & self.model_fields_set)
            if given:
                raise ValueError(f"a serverless endpoint has no instances: drop {' and '.join(given)}")
        return self


class SageMakerSettings(BaseModel):
    """``[tool.mltrack.plugins.sagemaker]``: what every SageMaker deployment shares."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, pattern=REGION, description="AWS region (default: AWS_REGION / the profile's)")
    profile: str | None = Field(None, description="AWS profile from ~/.aws (default: AWS_PROFILE or the default)")
    aws_access_key_id: str | None = Field(None, description="access key (default: the AWS credential chain)")
    aws_secret_access_key: SecretStr | None = Field(None, description="secret key that goes with aws_access_key_id")
    aws_session_token: SecretStr | None = Field(None, description="session token of temporary credentials")
    execution_role_arn: str | None = Field(
        None, pattern=ROLE_ARN, description="IAM role SageMaker assumes (needs S3 read and ECR pull)"
    )
    bucket: str | None = Field(None, pattern=BUCKET, description="S3 bucket for model artifacts")
    s3_prefix: str = Field("mltrack", min_length=1, description="key prefix of model artifacts in the bucket")
    image_uri: str | None = Field(None, min_length=1, description="serving image used by every deployment")
    ecr_repository: str = Field(
        "mltrack-serving", pattern=r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$", description="ECR repository of built images"
    )
    base_image: str | None = Field(
        None, description="base of built images (default: `python:<the model's Python>-slim`)"
    )
    docker: str = Field("docker", min_length=1, description="the Docker command used to build and push images")
    poll_interval_s: float = Field(15.0, gt=0, le=300, description="seconds between endpoint status checks")

    @field_validator("s3_prefix")
    @classmethod
    def _strip_slashes(cls, prefix: str) -> str:
        stripped = prefix.strip("/")
        if not stripped or re.search(r"[^\w!.*'()/-]", stripped):
            raise ValueError("must be a non-empty S3 key prefix of letters, digits and !-_.*'()/")
        return stripped

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> SageMakerSettings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together: set both or neither")
        return self
