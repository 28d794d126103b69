"""Names and tags of what a deployment creates in AWS.

The endpoint is named after the deployment, so ``mltrack deployments`` and the SageMaker console
agree. Models and endpoint configs are immutable in SageMaker, so every deploy creates new ones,
named ``<deployment>-v<version>-<UTC time>-<random>`` within SageMaker's 63 characters. Every
resource carries ``mltrack:*`` tags, which is how ``list`` finds MLTrack's endpoints among others.
"""

from __future__ import annotations

import re
import secrets
import time

from mltrack.extend import ModelRef

MAX_NAME = 63
TAG_DEPLOYMENT = "mltrack:deployment"
TAG_MODEL = "mltrack:model"
TAG_VERSION = "mltrack:version"
TAG_MANAGED = "mltrack:managed"


def resource_name(deployment: str, version: int) -> str:
    """A fresh name for a SageMaker model or endpoint config of ``deployment``."""
    suffix = f"-v{version}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    return deployment[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def default_bucket(region: str, account: str) -> str:
    return f"mltrack-sagemaker-{region}-{account}"


def model_data_key(prefix: str, model: ModelRef) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.name).strip("-.") or "model"
    return f"{prefix}/{slug}/v{model.version}/model.tar.gz"


def invocation_url(region: str, endpoint: str) -> str:
    """The HTTPS URL that ``sagemaker-runtime``'s InvokeEndpoint posts to (SigV4-signed)."""
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/invocations"


def aws_tags(deployment: str, model: ModelRef, extra: dict[str, str]) -> list[dict[str, str]]:
    own = {
        TAG_MANAGED: "true",
        TAG_DEPLOYMENT: deployment,
        TAG_MODEL: model.name[:256],
        TAG_VERSION: str(model.version),
    }
    return [{"Key": key, "Value": value} for key, value in {**extra, **own}.items()]
