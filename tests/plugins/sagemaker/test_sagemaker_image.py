"""The serving image: its generated Dockerfile and build context, ``mltrack sagemaker build-image``,
and (slow, where a Docker daemon runs) a real build whose container serves the model."""

# The fixtures are imported from aws_stand_in; tests name them as parameters (ruff: redefinitions).
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from aws_stand_in import aws, moto_url, register_doubling_model  # noqa: F401  (fixtures)
from conftest import run_cli
from moto_gaps import free_port

from mltrack.models.registry import _download, resolve_version
from mltrack_sagemaker.image import Docker, write_build_context
from mltrack_sagemaker.packaging import package_model, unpack_model

BASE_IMAGE_ENV = "MLTRACK_SAGEMAKER_TEST_BASE_IMAGE"


@pytest.fixture
def model_dir(sqlite_uri: str) -> Path:
    register_doubling_model("my-model")
    return _download(resolve_version("my-model", 1))


def test_the_dockerfile_bakes_requirements_at_build_time_and_serves_through_an_exec_form_entrypoint(
    model_dir: Path, tmp_path: Path
) -> None:
    context = write_build_context(model_dir, tmp_path / "context", model="models:/my-model/1", flavour="python")

    dockerfile = (tmp_path / "context" / "Dockerfile").read_text()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # the model was saved by this Python
    assert f"FROM python:{python}-slim" in dockerfile
    assert "RUN python3 -m venv /opt/mltrack/venv && /opt/mltrack/venv/bin/python -m pip install -r" in dockerfile
    assert "EXPOSE 8080" in dockerfile
    [entrypoint] = re.findall(r"^ENTRYPOINT (.*)$", dockerfile, re.MULTILINE)
    assert json.loads(entrypoint) == ["/opt/mltrack/venv/bin/python", "-m", "mltrack_sagemaker.container"]
    assert "CMD" not in dockerfile  # SageMaker passes `serve` itself
    assert "/opt/ml/model" not in dockerfile.split("FROM", 1)[1].replace("# ", "")  # the model is not baked in
    assert context.dockerfile == dockerfile


def test_the_build_context_carries_the_models_pins_and_mltracks_own_wheels(model_dir: Path, tmp_path: Path) -> None:
    context = write_build_context(model_dir, tmp_path / "context", model="models:/my-model/1", flavour="python")

    requirements = (tmp_path / "context" / "requirements.txt").read_text().splitlines()
    model_pins = [line for line in (model_dir / "requirements.txt").read_text().splitlines() if line.strip()]
    assert requirements[: len(model_pins)] == model_pins
    wheels = {line for line in requirements if line.startswith("./wheels/")}
    assert {w.split("/")[-1].split("-")[0] for w in wheels} == {"mltrack_core", "mltrack_sagemaker"}
    for line in wheels:
        with zipfile.ZipFile(tmp_path / "context" / line) as wheel:
            assert any(name.endswith(".dist-info/METADATA") for name in wheel.namelist())
    assert context.requirements == requirements


def test_cli_build_context_writes_the_folder_without_docker(model_dir: Path, tmp_path: Path) -> None:
    result = run_cli("sagemaker", "build-context", "my-model", str(tmp_path / "ctx"), "--base-image", "debian:12")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "ctx")
    assert (tmp_path / "ctx" / "Dockerfile").read_text().count("FROM debian:12") == 1


def test_cli_build_image_without_docker_says_so_in_one_line_with_a_hint(model_dir: Path) -> None:
    result = run_cli(
        "sagemaker", "build-image", "my-model", env={"MLTRACK_PLUGINS__SAGEMAKER__DOCKER": "docker-not-installed"}
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-2] == "Error: cannot build the SageMaker serving image here: `docker-not-installed` is not installed"
    assert lines[-1].startswith("Hint: run `mltrack sagemaker build-image` where Docker runs")


def test_docker_without_a_daemon_is_reported_as_such(tmp_path: Path) -> None:
    fake = tmp_path / "docker"
    message = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    fake.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    fake.chmod(0o755)
    reason = Docker(str(fake)).unavailable_reason()
    assert reason == f"the Docker daemon does not answer ({message})"


# -- a real build (slow; needs a running Docker daemon and a local base image) ---------------------


def _docker_skip_reason() -> str | None:
    reason = Docker().unavailable_reason()
    if reason is not None:
        return f"no Docker to build with: {reason}"
    base = os.environ.get(BASE_IMAGE_ENV, "mltrack-base:bookworm")
    found = subprocess.run(["docker", "image", "inspect", base], capture_output=True, timeout=30)
    if found.returncode != 0:
        return (
            f"base image {base} is missing (no registry to pull from): debootstrap --variant=minbase "
            "--include=python3,python3-venv,ca-certificates bookworm rootfs && "
            f"tar -C rootfs -c . | docker import - {base}  (or set {BASE_IMAGE_ENV})"
        )
    return None


@pytest.mark.slow
def test_docker_build_and_run_serves_the_model_and_stops_on_sigterm(model_dir: Path, tmp_path: Path) -> None:
    reason = _docker_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    base = os.environ.get(BASE_IMAGE_ENV, "mltrack-base:bookworm")
    docker = Docker()
    write_build_context(model_dir, tmp_path / "context", model="models:/my-model/1", flavour="python", base_image=base)
    tag = f"mltrack-sagemaker-test:{os.getpid()}"
    docker.build(tmp_path / "context", tag, network="host")
    opt_ml_model = unpack_model(package_model(model_dir, tmp_path / "s3").path, tmp_path / "model")
    port = free_port()
    run = ["docker", "run", "-d", "--network", "host", "-v", f"{opt_ml_model}:/opt/ml/model:ro"]
    container = subprocess.run(
        [*run, "-e", "MLTRACK_SERVE_HOST=127.0.0.1", "-e", f"MLTRACK_SERVE_PORT={port}", tag, "serve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 240  # SageMaker's limit for passing health checks
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        body = json.dumps({"inputs": {"x": [2.0]}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read()) == {"predictions": [4.0]}
        subprocess.run(["docker", "stop", "--time", "30", container], check=True, capture_output=True, timeout=60)
        code = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.ExitCode}}", container], capture_output=True, text=True
        ).stdout.strip()
        assert code == "0"  # it stopped on SIGTERM, not by SIGKILL (137)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)


def test_build_image_logs_in_to_ecr_creates_the_repository_and_pushes(
    model_dir: Path, tmp_path: Path, aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECR is moto's; the `docker` command line is a script that records its arguments (no daemon
    here): what is checked is what MLTrack asks of Docker and of ECR."""
    calls = tmp_path / "docker-calls"
    fake = tmp_path / "docker"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1" = login ] && cat >> {calls} && echo >> {calls}\nexit 0\n')
    fake.chmod(0o755)

    result = run_cli("sagemaker", "build-image", "my-model", env={"MLTRACK_PLUGINS__SAGEMAKER__DOCKER": str(fake)})

    assert result.returncode == 0, result.stderr
    remote = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mltrack-serving:my-model-v1"
    assert result.stdout.strip() == remote
    checks, lines = [], []
    for line in calls.read_text().splitlines():
        (checks if line.startswith("version") else lines).append(line)
    assert checks  # is a daemon there? asked before anything else
    local = "mltrack-sagemaker/mltrack-serving:my-model-v1"
    assert lines[0].startswith(f"build --tag {local} ")
    assert lines[1] == "login --username AWS --password-stdin https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert lines[2] == "123456789012-auth-token"  # moto's token, decoded from base64 "AWS:<password>"
    assert lines[3:] == [f"tag {local} {remote}", f"push {remote}"]
    import boto3

    repositories = boto3.client("ecr").describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repositories] == ["mltrack-serving"]


def test_the_plugin_that_wrote_the_model_goes_into_the_image() -> None:
    from mltrack_sagemaker.image import flavour_distribution

    assert flavour_distribution("python") is None  # the core's own flavour: mltrack-core is always there
    assert flavour_distribution(None) is None
    pytest.importorskip("mltrack_sklearn", reason="mltrack-sklearn is not installed beside this plugin")
    assert flavour_distribution("sklearn") == "mltrack-sklearn"
