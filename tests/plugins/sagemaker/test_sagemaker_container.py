"""The serving container's contract, run as a plain local process on an unpacked model.tar.gz.

SageMaker runs ``docker run <image> serve`` with the endpoint's ``model.tar.gz`` unpacked into
``/opt/ml/model``; the server must answer ``GET /ping`` (200, empty body, within 2 s) and
``POST /invocations`` on port 8080, and stop on SIGTERM. Here the same entrypoint
(``python -m mltrack_sagemaker.container serve``) serves a temporary folder holding the unpacked
archive, on 127.0.0.1 and a free port; nothing is faked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_stand_in import register_doubling_model
from moto_gaps import ContainerProcess, free_port, start_container

from mltrack.models.registry import _download, resolve_version
from mltrack_sagemaker.packaging import FIXED_MTIME, package_model, unpack_model


@pytest.fixture
def model_dir(sqlite_uri: str) -> Path:
    register_doubling_model("my-model")
    return _download(resolve_version("my-model", 1))


@pytest.fixture
def container(model_dir: Path, tmp_path: Path) -> Iterator[ContainerProcess]:
    """The real model.tar.gz, unpacked as SageMaker does, served by the real entrypoint."""
    packaged = package_model(model_dir, tmp_path / "s3")
    opt_ml_model = unpack_model(packaged.path, tmp_path / "opt" / "ml" / "model")
    started = start_container(opt_ml_model, tmp_path / "container.log")
    yield started
    started.stop()


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ping_answers_200_with_an_empty_body_within_two_seconds(container: ContainerProcess) -> None:
    started = time.monotonic()
    with urllib.request.urlopen(f"{container.url}/ping", timeout=2) as response:
        assert (response.status, response.read()) == (200, b"")
    assert time.monotonic() - started < 2.0


def test_invocations_answer_json_and_csv_in_mlflows_scoring_protocol(container: ContainerProcess) -> None:
    split = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.0], [4.0]]}}).encode()
    assert post(f"{container.url}/invocations", split, "application/json") == (200, {"predictions": [2.0, 8.0]})
    assert post(f"{container.url}/invocations", b"x\n1.5\n", "text/csv") == (200, {"predictions": [3.0]})


def test_input_against_the_signature_is_a_4xx_naming_the_column(container: ContainerProcess) -> None:
    body = json.dumps({"dataframe_records": [{"y": 1.0}]}).encode()
    status, answer = post(f"{container.url}/invocations", body, "application/json")
    assert status == 400 and "'x'" in str(answer["message"])


def test_sigterm_stops_the_server_cleanly(container: ContainerProcess) -> None:
    os.killpg(container.process.pid, signal.SIGTERM)
    assert container.process.wait(timeout=30) == 0  # SageMaker would SIGKILL after 30 s
    log = container.log_file.read_text()
    assert "mltrack-sagemaker: serving" in log and "Traceback" not in log


def test_sigterm_while_the_model_loads_stops_at_once(model_dir: Path, tmp_path: Path) -> None:
    # as PID 1 in a container Python ignores SIGTERM without a handler; ours is installed first thing
    process = subprocess.Popen(
        [sys.executable, "-m", "mltrack_sagemaker.container", "serve", "--model-dir", str(model_dir)],
        env={**os.environ, "MLTRACK_SERVE_HOST": "127.0.0.1", "MLTRACK_SERVE_PORT": str(free_port())},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    process.stdout.readline()  # "mltrack-sagemaker: serving ...": the handler is in place, loading starts
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_defaults_are_sagemakers_and_its_bind_to_port_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrack_sagemaker.container import build_parser

    for name in ("SAGEMAKER_BIND_TO_PORT", "MLTRACK_SERVE_PORT", "MLTRACK_SERVE_HOST", "MLTRACK_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser().parse_args(["serve"])
    assert (args.port, args.host, args.model_dir, args.workers) == (8080, "0.0.0.0", "/opt/ml/model", 1)
    monkeypatch.setenv("MLTRACK_SERVE_PORT", "9000")
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8081")
    assert build_parser().parse_args(["serve"]).port == 8081


def test_serve_without_a_model_and_train_fail_with_a_clear_message(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mltrack_sagemaker.container", *args], capture_output=True, text=True, timeout=60
        )

    empty = run("serve", "--model-dir", str(tmp_path))
    assert empty.returncode == 1
    assert f"{tmp_path} holds no MLflow model (no MLmodel file)" in empty.stderr
    train = run("train")
    assert train.returncode == 2 and "cannot run SageMaker training jobs" in train.stderr


# -- model.tar.gz ----------------------------------------------------------------------------------


def test_model_tar_gz_is_reproducible_with_the_model_files_at_its_root(model_dir: Path, tmp_path: Path) -> None:
    first = package_model(model_dir, tmp_path / "a")
    second = package_model(model_dir, tmp_path / "b")

    assert first.sha256 == second.sha256 and first.path.read_bytes() == second.path.read_bytes()
    with tarfile.open(first.path) as archive:
        members = archive.getmembers()
    names = {m.name for m in members}
    assert {"MLmodel", "python_model.pkl", "requirements.txt"} <= names
    assert all(m.uid == 0 and m.mtime == FIXED_MTIME and not m.name.startswith("/") for m in members)
    unpacked = unpack_model(first.path, tmp_path / "model")
    assert (unpacked / "MLmodel").read_bytes() == (model_dir / "MLmodel").read_bytes()


def test_a_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    from mltrack.errors import DeploymentError

    with pytest.raises(DeploymentError, match="is not an MLflow model directory"):
        package_model(tmp_path, tmp_path / "out")
