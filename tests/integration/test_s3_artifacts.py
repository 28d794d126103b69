"""Artifacts on S3 through the tracking server's proxy, the team set-up.

One stack per session, all real and on 127.0.0.1: moto's S3 server with a bucket,
``mlflow server --artifacts-destination s3://<bucket>/mlartifacts`` on the session's PostgreSQL,
the MLTrack UI pointed at that server. Clients hold no AWS keys: only the server talks to
the bucket, and every test checks the objects really are in it (boto3 against moto).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

import mltrack

if TYPE_CHECKING:
    from mltrack.testing.servers import PostgresServer

pytestmark = pytest.mark.server

BUCKET = "team-artifacts"
PREFIX = "mlartifacts"
AWS_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
MLTRACK = Path(sys.executable).parent / "mltrack"


@dataclass
class S3Stack:
    tracking_uri: str
    s3_endpoint: str
    server_log: Path
    database_uri: str

    def bucket(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=AWS_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_KEYS["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_KEYS["AWS_DEFAULT_REGION"],
        )

    def objects(self, run_id: str) -> dict[str, int]:
        """The bucket's objects under the run's artifact folder: path inside the run -> size."""
        found: dict[str, int] = {}
        for page in self.bucket().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                marker = f"/{run_id}/artifacts/"
                if marker in key:
                    found[key.split(marker, 1)[1]] = int(item["Size"])
        return found

    def body(self, run_id: str, path: str) -> bytes:
        for page in self.bucket().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
            for item in page.get("Contents", []):
                if str(item["Key"]).endswith(f"/{run_id}/artifacts/{path}"):
                    return bytes(self.bucket().get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
        raise AssertionError(f"no object for {path!r} of run {run_id} in the bucket")


@pytest.fixture(scope="session")
def s3_stack(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Stack]:
    """moto's S3 with a bucket, and ``mlflow server`` proxying artifacts to it, on its own database."""
    import boto3
    from moto.server import ThreadedMotoServer

    from mltrack.testing.servers import MlflowServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    backend = postgres.create_database("s3_artifacts")
    server = MlflowServer(
        backend,
        tmp_path_factory.mktemp("s3-server") / "unused",
        artifacts_destination=f"s3://{BUCKET}/{PREFIX}",
        env={"MLFLOW_S3_ENDPOINT_URL": endpoint, **AWS_KEYS},
    )
    try:
        server.start()
        yield S3Stack(server.url, endpoint, server.log_path, backend)
    finally:
        server.stop()
        moto.stop()


@pytest.fixture
def on_s3(s3_stack: S3Stack, monkeypatch: pytest.MonkeyPatch) -> S3Stack:
    """This test's process logs to the S3-backed server; it has no AWS keys of its own."""
    monkeypatch.setenv("MLTRACK_TRACKING_URI", s3_stack.tracking_uri)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    mltrack.set_experiment(f"s3-{uuid4().hex[:8]}")
    return s3_stack


def unique(name: str) -> str:
    return f"{name}-{uuid4().hex[:8]}"


# -- files and folders ----------------------------------------------------------------------------


def test_log_artifact_and_log_artifacts_land_in_the_bucket(on_s3: S3Stack, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("accuracy 0.93\n")
    folder = tmp_path / "plots"
    (folder / "nested").mkdir(parents=True)
    (folder / "loss.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    (folder / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    with mltrack.start_run() as run:
        mltrack.log_artifact(report)
        mltrack.log_artifacts(folder, "plots")
        mltrack.log_dict({"lr": 0.1}, "config/params.json")
    assert on_s3.objects(run.run_id) == {
        "report.txt": report.stat().st_size,
        "plots/loss.csv": (folder / "loss.csv").stat().st_size,
        "plots/nested/weights.bin": 10240,
        "config/params.json": len(json.dumps({"lr": 0.1}, indent=2)),
    }
    assert on_s3.body(run.run_id, "plots/nested/weights.bin") == bytes(range(256)) * 40
    # the run points at the proxy, not at the bucket: clients need no S3 keys
    assert mlflow_client(on_s3).get_run(run.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")


def mlflow_client(stack: S3Stack) -> Any:
    import mlflow

    return mlflow.MlflowClient(stack.tracking_uri)


def test_listing_and_downloading_through_the_proxy_reads_the_bucket(on_s3: S3Stack, tmp_path: Path) -> None:
    import mlflow

    (tmp_path / "a.txt").write_text("alpha")
    with mltrack.start_run() as run:
        mltrack.log_artifact(tmp_path / "a.txt", "docs")
    listed = mlflow_client(on_s3).list_artifacts(run.run_id, "docs")
    assert [(f.path, f.file_size) for f in listed] == [("docs/a.txt", 5)]
    local = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="docs/a.txt", dst_path=str(tmp_path / "down"), tracking_uri=on_s3.tracking_uri
    )
    assert Path(local).read_text() == "alpha"


# -- models ---------------------------------------------------------------------------------------


def churn_model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(np.random.default_rng(7).normal(size=(80, 3)), columns=["a", "b", "c"])
    return LogisticRegression().fit(frame, (frame["a"] > 0).astype(int)), frame


def test_log_model_stores_the_model_in_the_bucket_and_load_model_reads_it_back(on_s3: S3Stack) -> None:
    model, frame = churn_model()
    name = unique("s3-churn")
    with mltrack.start_run() as run:
        mltrack.log_model(model, "model", input_example=frame.head(2), registered_model_name=name)
    assert "model/MLmodel" in on_s3.objects(run.run_id)
    loaded = mltrack.load_model(name, version=1)
    assert loaded.predict(frame.head(5)).tolist() == model.predict(frame.head(5)).tolist()


def test_mltrack_serve_serves_a_registered_model_whose_files_are_on_s3(on_s3: S3Stack, tmp_path: Path) -> None:
    model, frame = churn_model()
    name = unique("s3-served")
    with mltrack.start_run():
        mltrack.log_model(model, "model", input_example=frame.head(2), registered_model_name=name)
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [str(MLTRACK), "serve", name, "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        url = _listening_url(process, log)
        body = json.dumps({"dataframe_split": frame.head(4).to_dict(orient="split")}).encode()
        request = urllib.request.Request(
            url + "/invocations", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read()) == {"predictions": model.predict(frame.head(4)).tolist()}
    finally:
        process.terminate()
        process.wait(30)


LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


def _listening_url(process: subprocess.Popen[str], log: Path, timeout: float = 180) -> str:
    """The URL ``mltrack serve`` announces, once ``/ping`` answers there."""
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"mltrack serve exited {process.returncode}: {log.read_text()}"
        if found:
            try:
                with urllib.request.urlopen(found[0] + "/ping", timeout=5) as response:
                    if response.status == 200:
                        return found[0]
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"mltrack serve did not answer /ping: {log.read_text()}")


# -- the UI's artifact browser ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_on_s3(s3_stack: S3Stack) -> Iterator[str]:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    with BackgroundServer(create_app(tracking_uri=s3_stack.tracking_uri)) as server:
        yield server.url


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_ui_lists_previews_and_downloads_artifacts_kept_on_s3(
    on_s3: S3Stack, ui_on_s3: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("trained on 80 rows\n")
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    (tmp_path / "curve.png").write_bytes(png)
    with mltrack.start_run() as run:
        mltrack.log_artifact(tmp_path / "notes.txt", "reports")
        mltrack.log_artifact(tmp_path / "curve.png", "reports")
        mltrack.log_dict({"depth": 3}, "params.json")
    assert set(on_s3.objects(run.run_id)) == {"reports/notes.txt", "reports/curve.png", "params.json"}
    api = f"{ui_on_s3}/api/runs/{run.run_id}/artifacts"

    status, _, raw = http_get(api)
    assert status == 200, raw
    assert sorted((f["path"], f["is_dir"]) for f in json.loads(raw)) == [("params.json", False), ("reports", True)]
    status, _, raw = http_get(f"{api}?path=reports")
    assert sorted((f["path"], f["file_size"]) for f in json.loads(raw)) == [
        ("reports/curve.png", len(png)),
        ("reports/notes.txt", 19),
    ]

    status, _, raw = http_get(f"{api}/preview?path=reports/notes.txt")
    assert status == 200, raw
    shown = json.loads(raw)
    assert (shown["kind"], shown["content"]) == ("text", "trained on 80 rows\n")
    status, _, raw = http_get(f"{api}/preview?path=reports/curve.png")
    assert json.loads(raw)["kind"] == "image"

    status, headers, raw = http_get(f"{api}/file?path=reports/curve.png")
    assert (status, raw) == (200, png)
    assert headers["content-disposition"].startswith("attachment")
    status, headers, raw = http_get(f"{api}/file?path=reports/curve.png&inline=true")
    assert (status, headers["content-type"], raw) == (200, "image/png", png)
    status, _, raw = http_get(f"{api}/file?path=reports/missing.txt")
    assert status == 404, raw


def test_a_ui_reading_the_database_directly_says_to_name_the_server_for_artifacts(
    on_s3: S3Stack, tmp_path: Path
) -> None:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    (tmp_path / "notes.txt").write_text("x")
    with mltrack.start_run() as run:
        mltrack.log_artifact(tmp_path / "notes.txt")
    with BackgroundServer(create_app(tracking_uri=on_s3.database_uri)) as direct:
        for route in ("", "/preview?path=notes.txt", "/file?path=notes.txt"):
            status, _, raw = http_get(f"{direct.url}/api/runs/{run.run_id}/artifacts{route}")
            answer = json.loads(raw)
            assert status == 502, (route, answer)
            assert "keeps its artifacts behind the tracking server's proxy" in answer["error"]
            assert "mlflow:mlflow@" not in answer["error"]  # the database password is masked
            assert "artifacts_server" in answer["hint"] and "--tracking-uri http://" in answer["hint"]


def test_a_ui_reading_the_database_directly_reads_artifacts_through_its_artifacts_server(
    on_s3: S3Stack, tmp_path: Path
) -> None:
    """The team's UI on a read replica: runs from the database, artifacts through the server's proxy."""
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "notes.txt").write_text("read through the proxy\n")
    with mltrack.start_run() as run:
        mltrack.log_artifacts(tmp_path / "reports", artifact_path="reports")
    app = create_app(tracking_uri=on_s3.database_uri, artifacts_server=on_s3.tracking_uri)
    with BackgroundServer(app) as direct:
        api = f"{direct.url}/api/runs/{run.run_id}/artifacts"
        status, _, raw = http_get(api)
        assert (status, json.loads(raw)) == (200, [{"path": "reports", "is_dir": True, "file_size": None}])
        status, _, raw = http_get(f"{api}?path=reports")
        assert [(f["path"], f["file_size"]) for f in json.loads(raw)] == [("reports/notes.txt", 23)]
        status, _, raw = http_get(f"{api}/preview?path=reports/notes.txt")
        assert (status, json.loads(raw)["content"]) == (200, "read through the proxy\n")
        status, _, raw = http_get(f"{api}/file?path=reports/notes.txt")
        assert (status, raw) == (200, b"read through the proxy\n")
        status, _, raw = http_get(f"{api}/file?path=reports/missing.txt")
        assert status == 404, raw


@pytest.mark.parametrize("value", ["mlflow:5000", "s3://bucket", "http://", "http://mlflow:5000/?x=1"])
def test_artifacts_server_takes_a_server_address_only(value: str) -> None:
    from pydantic import ValidationError

    from mltrack_ui.settings import UISettings

    with pytest.raises(ValidationError) as caught:
        UISettings(artifacts_server=value)
    assert "artifacts_server" in str(caught.value) and "http(s)://host:port" in str(caught.value)
    assert UISettings(artifacts_server="https://mlflow.example.com:5000/").artifacts_server == (
        "https://mlflow.example.com:5000"
    )


# -- the command line: upload with progress ---------------------------------------------------------


def test_mltrack_artifacts_upload_puts_a_large_file_in_the_bucket_with_progress(on_s3: S3Stack, tmp_path: Path) -> None:
    big = tmp_path / "weights.bin"
    big.write_bytes(np.random.default_rng(1).bytes(3 * 1024 * 1024))
    with mltrack.start_run() as run:
        pass
    result = run_cli(
        "artifacts",
        "upload",
        run.run_id,
        str(big),
        "--artifact-path",
        "checkpoints",
        env={"MLTRACK_UPLOAD_PROGRESS_THRESHOLD": "1MB", "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert "weights.bin" in result.stderr and "3.1 MB" in result.stderr
    assert on_s3.objects(run.run_id) == {"checkpoints/weights.bin": big.stat().st_size}
    assert on_s3.body(run.run_id, "checkpoints/weights.bin") == big.read_bytes()
