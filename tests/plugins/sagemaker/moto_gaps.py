"""THE seam of the SageMaker tests: what moto's SageMaker does not do, done in moto's own handlers.

moto (pinned in constraints.txt) runs the AWS side for real as a server on 127.0.0.1: S3, IAM,
STS, ECR, CloudWatch Logs, and SageMaker's models, endpoint configs, endpoints and tags. boto3
talks HTTP to it exactly as to AWS. Three things it does not do, and only those, are faked here, by
replacing the handler methods of moto's response classes (the threaded server runs in the test
process, so a monkeypatch reaches it):

1. ``UpdateEndpoint`` is not implemented (HTTP 500): the replacement points the endpoint at the new
   endpoint config, with status ``Updating``.
2. ``DescribeEndpoint`` always says ``InService``: the replacement plays a script per endpoint,
   by default ``pending_polls`` answers of ``Creating`` (or ``Updating``) before ``InService``;
   ``fail_creation`` ends in ``Failed`` with a ``FailureReason``, ``fail_update`` rolls back to
   the previous config (``InService`` with a ``FailureReason``), as SageMaker does.
3. ``InvokeEndpoint`` returns canned bodies: the replacement does what SageMaker does instead. It
   downloads the endpoint's ``model.tar.gz`` from (moto's) S3, unpacks it as ``/opt/ml/model``
   would be, runs the real container entrypoint (``python -m mltrack_sagemaker.container serve``)
   on it as a local process, forwards the request to its ``/invocations``, turns an error answer
   into SageMaker's ``ModelError`` (424), and ships the container's output to the endpoint's
   CloudWatch log group, as SageMaker does with a container's stdout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from mltrack_sagemaker.packaging import unpack_model

STARTUP_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ContainerProcess:
    """The serving container's entrypoint running locally on one unpacked model.tar.gz."""

    model_data: str
    process: subprocess.Popen[bytes]
    port: int
    log_file: Path
    shipped_lines: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


def start_container(model_dir: Path, log_file: Path, *, model_data: str = "") -> ContainerProcess:
    """Run ``python -m mltrack_sagemaker.container serve`` on ``model_dir`` and wait for ``/ping``."""
    port = free_port()
    env = {**os.environ, "MLTRACK_SERVE_HOST": "127.0.0.1", "MLTRACK_SERVE_PORT": str(port)}
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mltrack_sagemaker.container", "serve", "--model-dir", str(model_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    container = ContainerProcess(model_data=model_data, process=process, port=port, log_file=log_file)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the container exited with {process.returncode}: {log_file.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{container.url}/ping", timeout=2) as response:
                if response.status == 200:
                    return container
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    container.stop()
    raise RuntimeError(f"the container did not answer /ping in {STARTUP_TIMEOUT_S} s: {log_file.read_text()[-2000:]}")


@dataclass
class SageMakerGaps:
    """The replacements of moto's UpdateEndpoint, DescribeEndpoint and InvokeEndpoint handlers."""

    workdir: Path
    pending_polls: int = 1
    scripts: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    rollbacks: dict[str, str] = field(default_factory=dict)
    containers: dict[str, ContainerProcess] = field(default_factory=dict)
    invocations: list[tuple[str, str]] = field(default_factory=list)
    updates: list[tuple[str, str]] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _previous_config: dict[str, str] = field(default_factory=dict)

    # -- what a test sets up -----------------------------------------------------------------

    def fail_creation(self, endpoint: str, reason: str) -> None:
        """The endpoint's creation ends in ``Failed`` with ``reason`` after the pending polls."""
        self.scripts[endpoint] = [("Creating", None)] * self.pending_polls + [("Failed", reason)]

    def fail_update(self, endpoint: str, reason: str) -> None:
        """The endpoint's next update rolls back to its previous config, with ``reason``."""
        self.rollbacks[endpoint] = reason

    def stop_all(self) -> None:
        for container in self.containers.values():
            container.stop()
        self.containers.clear()

    # -- the handlers ------------------------------------------------------------------------

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        gaps = self
        original_describe = SageMakerResponse.describe_endpoint

        def update_endpoint(response: SageMakerResponse) -> Any:
            name = response._get_param("EndpointName")
            config_name = response._get_param("EndpointConfigName")
            backend = response.sagemaker_backend
            endpoint = backend.endpoints[name]  # KeyError: moto answers 400 ValidationException-like
            config = backend.describe_endpoint_config(config_name)
            gaps._previous_config[name] = endpoint.endpoint_config_name
            gaps.updates.append((name, config_name))
            endpoint.endpoint_config_name = config_name
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            endpoint.endpoint_status = "Updating"
            endpoint.failure_reason = None
            gaps._seen.add((name, config_name))
            if name in gaps.rollbacks:
                gaps.scripts[name] = [("Updating", None)] * gaps.pending_polls + [
                    ("RollBack", gaps.rollbacks.pop(name))
                ]
            elif not gaps.scripts.get(name):
                gaps.scripts[name] = [("Updating", None)] * gaps.pending_polls + [("InService", None)]
            return ActionResult({"EndpointArn": endpoint.arn})

        def describe_endpoint(response: SageMakerResponse) -> Any:
            name = response._get_param("EndpointName")
            endpoint = response.sagemaker_backend.endpoints.get(name)
            if endpoint is not None:
                key = (name, endpoint.endpoint_config_name)
                if key not in gaps._seen:  # a new endpoint: it is Creating for a while
                    gaps._seen.add(key)
                    if not gaps.scripts.get(name):
                        gaps.scripts[name] = [("Creating", None)] * gaps.pending_polls + [("InService", None)]
                script = gaps.scripts.get(name)
                if script:
                    status, reason = script.pop(0)
                    if status == "RollBack":
                        endpoint.endpoint_config_name = gaps._previous_config[name]
                        status = "InService"
                    endpoint.endpoint_status = status
                    endpoint.failure_reason = reason
            return original_describe(response)

        def invoke_endpoint(response: SageMakerRuntimeResponse) -> Any:
            name = response._get_param("EndpointName") or response.path.split("/")[2]
            return gaps._invoke(name, response.body, dict(response.headers))

        monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
        monkeypatch.setattr(SageMakerResponse, "describe_endpoint", describe_endpoint)
        monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)

    # -- InvokeEndpoint: what SageMaker does -------------------------------------------------

    def _invoke(self, endpoint_name: str, body: Any, headers: dict[str, str]) -> Any:
        """(status, headers, body) as moto's handlers answer; moto takes the status from headers["status"]."""
        sagemaker = boto3.client("sagemaker")
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except sagemaker.exceptions.ClientError:
            return (
                400,
                {"status": "400", "x-amzn-ErrorType": "ValidationError"},
                json.dumps({"message": f"Endpoint {endpoint_name} of account 123456789012 not found."}),
            )
        if endpoint["EndpointStatus"] != "InService":
            return (
                400,
                {"status": "400", "x-amzn-ErrorType": "ValidationError"},
                json.dumps({"message": f"Endpoint {endpoint_name} is not in service ({endpoint['EndpointStatus']})."}),
            )
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        model_data = model["PrimaryContainer"]["ModelDataUrl"]
        container = self._container_for(model_data)
        self.invocations.append((endpoint_name, model_data))
        data = body.encode() if isinstance(body, str) else bytes(body or b"")
        request = urllib.request.Request(
            f"{container.url}/invocations",
            data=data,
            headers={
                "Content-Type": headers.get("Content-Type", "application/json"),
                "Accept": headers.get("Accept", "application/json"),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, text, content_type = answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, text, content_type = exc.code, exc.read(), ""
        self._ship_logs(endpoint_name, variant["VariantName"], container)
        if status != 200:
            message = text.decode(errors="replace")
            return (
                424,
                {"status": "424", "x-amzn-ErrorType": "ModelError"},
                json.dumps(
                    {
                        "message": f'Received client error ({status}) from primary with message "{message}".',
                        "OriginalStatusCode": status,
                        "OriginalMessage": message,
                        "LogStreamArn": f"/aws/sagemaker/Endpoints/{endpoint_name}",
                    }
                ),
            )
        return 200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant["VariantName"]}, text

    def _container_for(self, model_data: str) -> ContainerProcess:
        if model_data not in self.containers:
            bucket, key = model_data.removeprefix("s3://").split("/", 1)
            folder = Path(tempfile.mkdtemp(prefix="opt-ml-", dir=self.workdir))
            archive = folder / "model.tar.gz"
            archive.write_bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            model_dir = unpack_model(archive, folder / "model")
            self.containers[model_data] = start_container(model_dir, folder / "container.log", model_data=model_data)
        return self.containers[model_data]

    def _ship_logs(self, endpoint: str, variant: str, container: ContainerProcess) -> None:
        lines = container.log_file.read_text(errors="replace").splitlines()
        new = [line for line in lines[container.shipped_lines :] if line.strip()]
        container.shipped_lines = len(lines)
        if not new:
            return
        logs = boto3.client("logs")
        group, stream = f"/aws/sagemaker/Endpoints/{endpoint}", f"{variant}/i-local{container.port}"
        for create in (
            lambda: logs.create_log_group(logGroupName=group),
            lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
        ):
            try:
                create()
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
        now = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in new],
        )
