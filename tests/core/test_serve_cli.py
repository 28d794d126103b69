"""``mltrack serve`` as a real process: port, readiness, predictions, SIGTERM drain, errors.

Each server listens on port 0 (any free port) and the test reads the port from the line
``mltrack serve`` prints. The drain test holds a request inside the model with a file
gate, so it does not depend on timing: SIGTERM arrives while the request is certainly in
flight, and the request is released only once the server has stopped accepting.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, run_python
from mlflow.models import infer_signature

import mltrack

MLTRACK = Path(sys.executable).parent / "mltrack"
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


class Slow:
    """Doubles x; a call announces itself through ``started`` and waits for ``release``."""

    def __init__(self, started: str, release: str) -> None:
        self.started = started
        self.release = release

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        Path(self.started).touch()
        deadline = time.monotonic() + 120
        while not Path(self.release).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return frame["x"].to_numpy() * 2


def log_by_value(model: Any, name: str, **options: Any) -> None:
    """Log a model defined in this test module so that a fresh process can load it
    (its class travels inside the model, as a notebook's would)."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        with mltrack.start_run():
            mltrack.log_model(model, "model", registered_model_name=name, **options)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


DOUBLES = {"signature": infer_signature(pd.DataFrame({"x": [1.0]}), np.array([2.0]))}


class ServeProcess:
    """A running ``mltrack serve``; its stdout lines are collected as they come."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.lines: list[str] = []
        self.log = log
        self._listening = threading.Event()
        self.url = ""
        self.proc = subprocess.Popen(
            [str(MLTRACK), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match:
                self.url = match.group(1)
                self._listening.set()

    def wait_listening(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.1):
            assert self.proc.poll() is None, f"mltrack serve exited {self.proc.returncode}: {self.log.read_text()}"
            assert time.monotonic() < deadline, f"mltrack serve did not listen: {self.log.read_text()}"
        return self.url

    def wait_ready(self, timeout: float = 180) -> str:
        url = self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while get(url + "/ping")[0] != 200:
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"/ping never answered 200: {self.log.read_text()}"
            time.sleep(0.1)
        return url

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        process = ServeProcess(list(args), tmp_path / f"serve-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(10)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def post(url: str, body: bytes, content_type: str = "application/json", timeout: float = 120) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def accepts_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except OSError:
        return False


def test_serve_a_registered_sklearn_model_then_sigterm_exits_0(sqlite_uri: str, serve: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(np.random.default_rng(3).normal(size=(100, 3)), columns=["a", "b", "c"])
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, (frame["a"] > 0).astype(int))
    with mltrack.start_run():
        mltrack.log_model(model, "model", input_example=frame.head(2), registered_model_name="churn")
    server = serve("churn", "--version", "1", "--port", "0", "--log-level", "warning")
    url = server.wait_ready()
    assert any(
        "mltrack serve: model 'churn' v1 (sklearn) listening on http://127.0.0.1:" in line for line in server.lines
    )
    expected = model.predict(frame.head(4)).tolist()
    body = json.dumps({"dataframe_split": frame.head(4).to_dict(orient="split")}).encode()
    assert post(url + "/invocations", body) == (200, {"predictions": expected})
    csv = frame.head(4).to_csv(index=False).encode()
    assert post(url + "/invocations", csv, "text/csv") == (200, {"predictions": expected})
    status, answer = post(url + "/invocations", b'{"inputs": {"a": [1.0]}}')
    assert status == 400 and "missing column(s) 'b', 'c'" in answer["message"]
    assert post(url + "/predict", body) == (200, {"predictions": expected})
    assert server.stop() == 0


def test_sigterm_drains_the_request_in_flight_and_exits_0(sqlite_uri: str, serve: Any, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    log_by_value(Slow(str(started), str(release)), "slow", **DOUBLES)
    server = serve("slow", "--port", "0")
    url = server.wait_ready()
    answers: list[tuple[int, Any]] = []
    request = threading.Thread(target=lambda: answers.append(post(url + "/invocations", b'{"inputs": {"x": [21.0]}}')))
    request.start()
    deadline = time.monotonic() + 60
    while not started.exists():  # the request is inside the model now
        assert time.monotonic() < deadline and request.is_alive()
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while accepts_connections(url):  # shutting down: no new connections...
        assert time.monotonic() < deadline, "the server kept accepting after SIGTERM"
        time.sleep(0.05)
    assert server.proc.poll() is None  # ...but still alive, holding the request in flight
    release.touch()
    request.join(60)
    assert answers == [(200, {"predictions": [42.0]})]
    assert server.proc.wait(60) == 0


def raw_post(url: str, headers: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """POST /invocations over a bare socket (for bodies urllib will not send); the server must
    close the connection after answering. Returns the status, headers and JSON body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"POST /invocations HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), fields, json.loads(payload)


def test_an_oversize_body_is_a_413_and_requests_beyond_the_concurrency_limit_a_503(
    sqlite_uri: str, serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    log_by_value(Slow(str(started), str(release)), "bounded", **DOUBLES)
    monkeypatch.setenv("MLTRACK_SERVE_MAX_BODY_SIZE", "1KiB")  # the environment sets what the CLI does not
    server = serve("bounded", "--port", "0", "--max-concurrency", "1")
    url = server.wait_ready()
    # a declared size over the limit: answered at once, before any of the body is sent
    status, headers, answer = raw_post(url, "Content-Type: application/json\r\nContent-Length: 10000000000\r\n")
    assert (status, headers["connection"], answer["error_code"]) == (413, "close", "REQUEST_TOO_LARGE")
    assert "limit of 1.0 KiB" in answer["message"] and "(10,000,000,000 bytes)" in answer["message"]
    # chunked, with no Content-Length: cut off once the bytes received pass the limit
    chunk = b"1" * 800
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(2)) + b"0\r\n\r\n"
    status, _, answer = raw_post(url, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", chunked)
    assert (status, answer["error_code"]) == (413, "REQUEST_TOO_LARGE")
    # one request inside the model takes the only place: the next one is turned away at once
    answers: list[tuple[int, Any]] = []
    held = threading.Thread(target=lambda: answers.append(post(url + "/invocations", b'{"inputs": {"x": [1.0]}}')))
    held.start()
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and held.is_alive()
        time.sleep(0.02)
    status, answer = post(url + "/invocations", b'{"inputs": {"x": [2.0]}}', timeout=10)
    assert (status, answer["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")
    assert get(url + "/ping")[0] == 200
    release.touch()
    held.join(60)
    assert answers == [(200, {"predictions": [2.0]})]
    assert post(url + "/invocations", b'{"inputs": {"x": [2.0]}}') == (200, {"predictions": [4.0]})
    assert get(url + "/version") == (200, mlflow.__version__.encode())
    assert server.stop() == 0


def test_sigterm_with_slow_clients_and_a_stuck_prediction_exits_within_the_shutdown_timeout(
    sqlite_uri: str, serve: Any, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    log_by_value(Slow(str(started), str(tmp_path / "never")), "stuck", **DOUBLES)
    server = serve("stuck", "--port", "0", "--shutdown-timeout-s", "2")
    url = server.wait_ready()
    host, port = url.removeprefix("http://").split(":")

    cut_off: list[tuple[int, Any]] = []

    def predict_forever() -> None:
        cut_off.append(post(url + "/invocations", b'{"inputs": {"x": [1.0]}}', timeout=60))

    stuck = threading.Thread(target=predict_forever, daemon=True)
    stuck.start()
    slow_clients = []
    for _ in range(5):  # each sends its headers and a little of its body, then nothing more
        client = socket.create_connection((host, int(port)), timeout=60)
        client.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        client.sendall(b'Content-Length: 1000\r\n\r\n{"inputs": ')
        slow_clients.append(client)
    deadline = time.monotonic() + 60
    while not started.exists():  # the prediction is running and never ends on its own
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(30)
    finally:
        for client in slow_clients:
            client.close()
    took = time.monotonic() - signalled
    assert code == 0
    assert took < 2 + 6, f"the server took {took:.1f} s to exit after SIGTERM, with a 2 s shutdown timeout"
    assert "still running after the shutdown timeout" in server.log.read_text()
    stuck.join(10)
    assert [(status, answer["error_code"]) for status, answer in cut_off] == [(503, "TEMPORARILY_UNAVAILABLE")]


def test_serve_a_local_model_directory_and_stop_on_sigint(sqlite_uri: str, serve: Any, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.touch()
    log_by_value(Slow(str(tmp_path / "started"), str(release)), "local", **DOUBLES)
    source = mlflow.MlflowClient().get_model_version("local", "1").source
    directory = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "dl")))
    server = serve(str(directory), "--port", "0", "--max-batch-size", "8", "--max-wait-ms", "1")
    url = server.wait_ready()
    assert any(f"model at {directory}" in line for line in server.lines)
    health = json.loads(get(url + "/health")[1])
    assert health == {"status": "ok", "model": {"name": None, "version": None, "flavour": "python"}}
    assert post(url + "/invocations", b'{"instances": [{"x": 1.5}]}') == (200, {"predictions": [3.0]})
    assert server.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_several_workers_serve_the_same_model(sqlite_uri: str, serve: Any, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.touch()
    log_by_value(Slow(str(tmp_path / "started"), str(release)), "pair", **DOUBLES)
    server = serve("pair", "--workers", "2", "--port", "0")
    url = server.wait_ready()
    assert any("2 workers" in line for line in server.lines)
    for x in range(6):
        assert post(url + "/invocations", json.dumps({"inputs": {"x": [float(x)]}}).encode()) == (
            200,
            {"predictions": [2.0 * x]},
        )
    assert json.loads(get(url + "/metadata")[1])["name"] == "pair"
    assert server.stop() == 0


def test_an_unknown_model_fails_fast_with_the_reason(sqlite_uri: str) -> None:
    result = run_cli("serve", "no-such-model", "--port", "0")
    assert result.returncode == 1
    assert "Error: no registered model named 'no-such-model'" in result.stderr
    assert "Hint: registered models:" in result.stderr


def test_a_port_in_use_is_reported(sqlite_uri: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.touch()
    log_by_value(Slow(str(tmp_path / "started"), str(release)), "busy", **DOUBLES)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "busy", "--port", str(port), timeout=180)
    assert result.returncode == 1
    assert f"Error: could not serve on http://127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr


def test_importing_the_command_imports_no_server_or_framework(tmp_path: Path) -> None:
    code = (
        "import sys; before = set(sys.modules); import mltrack.cli.serve; "
        "print(sorted(m.split('.')[0] for m in set(sys.modules) - before))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    heavy = {"fastapi", "starlette", "uvicorn", "mlflow", "pandas", "numpy", "orjson", "sklearn", "torch"}
    assert not heavy & set(eval(result.stdout))
    help_text = run_cli("serve", "--help").stdout
    for option in (
        "--version",
        "--host",
        "--port",
        "--workers",
        "--max-batch-size",
        "--max-wait-ms",
        "--max-body-size",
        "--max-concurrency",
        "--shutdown-timeout-s",
        "MLTRACK_SERVE_MAX_BODY_SIZE",
    ):
        assert option in help_text


def test_bad_options_are_refused_by_the_command(sqlite_uri: str) -> None:
    result = run_cli("serve", "churn", "--workers", "0")
    assert result.returncode == 2 and "--workers" in result.stderr
    result = run_cli("serve", "churn", "--max-wait-ms", "-1")
    assert result.returncode == 2 and "--max-wait-ms" in result.stderr
    result = run_cli("serve", "churn", "--max-body-size", "lots")
    assert result.returncode == 2 and "'lots' is not a size" in result.stderr
    result = run_cli("serve", "churn", "--max-concurrency", "0")
    assert result.returncode == 2 and "--max-concurrency" in result.stderr
