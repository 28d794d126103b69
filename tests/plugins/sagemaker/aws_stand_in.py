"""AWS on 127.0.0.1: a moto server, reset before each test, with the three gaps of moto's SageMaker
filled at one seam (``moto_gaps.py``).

Test modules import the fixtures they use from here (a ``conftest.py`` in this folder would shadow
``tests/conftest.py``, which the test modules import as ``conftest``).

The ``aws`` fixture points every boto3 client at the moto server (``AWS_ENDPOINT_URL``) with
dummy credentials and hides any real AWS configuration of the machine; ``sagemaker_settings``
adds what a team sets once in ``[tool.mltrack.plugins.sagemaker]`` (role, image, fast polling).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto_gaps import SageMakerGaps

REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mltrack-serving:test"
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or region from this machine: no ~/.aws files, no instance metadata."""
    for name in (*AWS_VARIABLES, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh, empty AWS (moto) with dummy credentials in us-east-1; returns its URL."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    no_aws_configuration(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto_url


@pytest.fixture
def gaps(aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SageMakerGaps]:
    seam = SageMakerGaps(workdir=tmp_path)
    seam.install(monkeypatch)
    yield seam
    seam.stop_all()


@pytest.fixture
def execution_role(aws: str) -> str:
    import boto3

    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    role = boto3.client("iam").create_role(RoleName="mltrack-sagemaker", AssumeRolePolicyDocument=trust)
    return str(role["Role"]["Arn"])


@pytest.fixture
def sagemaker_settings(gaps: SageMakerGaps, execution_role: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``[tool.mltrack.plugins.sagemaker]`` as a team sets it once (through the environment here)."""
    settings = {"EXECUTION_ROLE_ARN": execution_role, "IMAGE_URI": IMAGE, "POLL_INTERVAL_S": "0.05"}
    for key, value in settings.items():
        monkeypatch.setenv(f"MLTRACK_PLUGINS__SAGEMAKER__{key}", value)
    from mltrack.config import settings as config

    config.reset_settings()
    return settings


def doubling_model() -> Any:
    """A python-flavour model: ``2 * x`` per row (a closure, so cloudpickle stores it by value and
    the container process can load it without this test module)."""

    def predict(rows: Any) -> Any:
        return (rows["x"] * 2.0).to_numpy()

    return predict


def register_doubling_model(name: str = "my-model") -> int:
    import pandas as pd

    import mltrack

    with mltrack.start_run():
        info = mltrack.log_model(doubling_model(), "model", input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return mltrack.register_model(info.model_uri, name)


@pytest.fixture
def credentials_checked(moto_url: str) -> Iterator[None]:
    """moto checks access keys against its IAM users (none here), as AWS does, so the dummy keys
    are rejected: moto's own ``reset-auth`` switch, not a fake."""

    def reset_auth(count: str) -> None:
        request = urllib.request.Request(
            f"{moto_url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    reset_auth("0")
    try:
        yield
    finally:
        reset_auth("inf")  # moto's default: no checks
