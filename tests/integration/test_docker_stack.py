"""The compose stack for real: dockerd, images built here, PostgreSQL, the MLflow tracking server
and the UI in containers, runs and a model logged from the host, a restart that keeps them.

No registry is reachable on the CI machine, so the test runs the stack through compose.test.yaml
(read its header): images start from a Debian base made with debootstrap (cached, as a tarball,
under /var/cache/mltrack-ci with the wheelhouse and dockerd's own data, so a rerun reuses layers),
pip installs from a wheelhouse this test serves to the builds, PostgreSQL is Debian's package, and
moto's S3 server on the host stands in for MinIO (it lives in this process, so it outlasts the
stack's restart: the restart tests what the stack's own volumes keep). dockerd runs in the
background without its default bridge, as ../shared/TESTING.md describes; the stack's own network
(a user-defined bridge, as on a user's machine) works there, with published ports and service names.

Nothing is skipped: a machine that cannot run dockerd makes this test fail with dockerd's own
words. The steps' durations go to test-artifacts/docker-stack.json.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MLTRACK_CI_CACHE", "/var/cache/mltrack-ci"))
BASE_IMAGE = "mltrack-base:bookworm-pg15"
ROOTFS_TAR = CACHE / "bookworm-python3-pg15.tar"
# python3-venv for the images' virtualenvs, postgresql-15 for the PostgreSQL image (docker/postgres)
DEBOOTSTRAP_PACKAGES = "python3-minimal,python3,python3-venv,ca-certificates,postgresql-15"
PROJECT = f"mltrack-test-{os.getpid()}"
GATEWAY = "172.31.250.1"  # of the subnet compose.test.yaml gives the stack's network
TIMINGS: dict[str, float] = {}
REPORT = ROOT / "test-artifacts" / "docker-stack.json"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 600, step: str = "") -> str:
    """Run a command; on failure, fail the test with its last lines (the reason, not a traceback)."""
    started = time.monotonic()
    result = subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout
    )
    if step:
        TIMINGS[step] = round(TIMINGS.get(step, 0.0) + time.monotonic() - started, 1)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        pytest.fail(f"{' '.join(args[:4])} ... failed (exit {result.returncode}):\n{tail}", pytrace=False)
    return result.stdout


def _wait_http(url: str, *, timeout: float, what: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
                return
        except (OSError, urllib.error.URLError) as error:
            last = str(error)
        time.sleep(0.5)
    pytest.fail(f"{what} did not answer {url} within {timeout:.0f} s: {last}", pytrace=False)


@pytest.fixture(scope="module")
def docker_env() -> Iterator[dict[str, str]]:
    """A dockerd of this test's own, in the background; its socket in DOCKER_HOST."""
    missing = [name for name in ("dockerd", "docker", "docker-compose", "debootstrap") if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: `make system-deps` installs them", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("dockerd and debootstrap need root: run this test as root (the CI machine does)", pytrace=False)
    # a short path: the daemon's sockets live under exec-root, and a Unix socket path has ~100 characters
    run_dir = Path(tempfile.mkdtemp(prefix="mltrack-dockerd-", dir="/tmp"))
    CACHE.mkdir(parents=True, exist_ok=True)
    socket_path = run_dir / "docker.sock"
    log = (run_dir / "dockerd.log").open("wb")
    started = time.monotonic()
    daemon = subprocess.Popen(
        ["dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false",
         "--data-root", str(CACHE / "docker"), "--exec-root", str(run_dir / "exec"),
         "--pidfile", str(run_dir / "docker.pid"), "-H", f"unix://{socket_path}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    env = {"DOCKER_HOST": f"unix://{socket_path}"}
    try:
        while True:
            ready = subprocess.run(["docker", "version"], capture_output=True, env={**os.environ, **env}, timeout=30)
            if ready.returncode == 0:
                break
            if daemon.poll() is not None or time.monotonic() - started > 60:
                tail = (run_dir / "dockerd.log").read_text(errors="replace").strip().splitlines()[-15:]
                pytest.fail("dockerd did not start on this machine:\n" + "\n".join(tail), pytrace=False)
            time.sleep(0.5)
        TIMINGS["dockerd start"] = round(time.monotonic() - started, 1)
        yield env
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
        log.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _base_image(env: dict[str, str]) -> None:
    """The Debian base, imported from the cached debootstrap tarball (made on the first run)."""
    inspect = ["docker", "image", "inspect", BASE_IMAGE]
    if subprocess.run(inspect, capture_output=True, env={**os.environ, **env}).returncode == 0:
        return
    if not ROOTFS_TAR.exists():
        rootfs = CACHE / "rootfs-build"
        shutil.rmtree(rootfs, ignore_errors=True)
        _run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}", "bookworm", str(rootfs),
             "http://deb.debian.org/debian"],
            step="debootstrap", timeout=600,
        )  # fmt: skip
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        partial = ROOTFS_TAR.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], step="debootstrap")
        partial.rename(ROOTFS_TAR)
        shutil.rmtree(rootfs, ignore_errors=True)
    _run(["docker", "import", str(ROOTFS_TAR), BASE_IMAGE], env=env, step="docker import")


def _wheelhouse() -> Path:
    """Every dependency of the images as wheels, made by this machine's pip (which has the index)."""
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "-w", str(wheels),
            "-c", str(ROOT / "constraints.txt"), "-r", str(ROOT / "docker" / "requirements-tracking.txt"),
            str(ROOT / "mltrack-core"), str(ROOT / "mltrack-ui")]  # fmt: skip
    started = time.monotonic()
    offline = subprocess.run([*args, "--no-index", "--find-links", str(wheels)], capture_output=True, cwd=ROOT)
    if offline.returncode != 0:
        _run(args, timeout=600)
    TIMINGS["wheelhouse"] = round(time.monotonic() - started, 1)
    # MLTrack's own wheels come fresh from `make docker-wheels`; a cached copy of the same version
    # would compete with them
    for stale in wheels.glob("mltrack_*.whl"):
        stale.unlink()
    return wheels


@pytest.fixture(scope="module")
def wheels_url() -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(_wheelhouse()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    # on every address: the containers reach the host at their network's gateway (compose.test.yaml)
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=0, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    try:
        yield f"http://{GATEWAY}:{port}"
    finally:
        server.stop()


class Stack:
    """The stack as `make docker-*` drives it, with the test override and this test's settings."""

    def __init__(self, env: dict[str, str], env_file: Path, ports: dict[str, int], token: str) -> None:
        self.env = env
        self.env_file = env_file
        self.ports = ports
        self.token = token
        self.make_args = [
            "DOCKER_COMPOSE=docker-compose",
            f"COMPOSE_PROJECT={PROJECT}",
            "COMPOSE_FILES=-f compose.test.yaml",
            f"ENV_FILE={env_file}",
        ]

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ui']}"

    def make(self, target: str, *extra: str, step: str = "") -> str:
        return _run(["make", "--no-print-directory", target, *self.make_args, *extra], env=self.env, step=step)

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "--env-file", str(self.env_file), "-p", PROJECT, "-f", "compose.yaml",
                   "-f", "compose.test.yaml", *args]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **self.env})

    def up(self, step: str) -> float:
        started = time.monotonic()
        self.make("docker-up", "SERVICES=postgres mlflow ui")
        _wait_http(f"{self.tracking_uri}/health", timeout=180, what="the tracking server")
        _wait_http(f"{self.ui_url}/api/auth", timeout=120, what="the UI")
        took = round(time.monotonic() - started, 1)
        TIMINGS[step] = took
        return took


@pytest.fixture(scope="module")
def stack(
    docker_env: dict[str, str], wheels_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    _base_image(docker_env)
    ports = {"mlflow": _free_port(), "ui": _free_port()}
    token = secrets.token_urlsafe(24)
    env_file = tmp_path_factory.mktemp("docker-stack") / "stack.env"
    env_file.write_text(
        "\n".join([
            "POSTGRES_PASSWORD=" + secrets.token_urlsafe(16),
            # moto takes any keys; the stack hands these to the tracking server as its AWS keys
            "MINIO_ROOT_USER=testing", "MINIO_ROOT_PASSWORD=testing",
            f"MLTRACK_UI_TOKEN={token}", "MLTRACK_UI_SESSION_SECRET=" + secrets.token_urlsafe(32),
            f"MLTRACK_BASE_IMAGE={BASE_IMAGE}", f"MLTRACK_WHEELS_URL={wheels_url}",
            "MLTRACK_PIP_COMPILE=0",
            f"MLFLOW_PORT={ports['mlflow']}", f"UI_PORT={ports['ui']}",
            f"MLFLOW_S3_ENDPOINT_URL={s3_endpoint}", "MLFLOW_WORKERS=1",
        ]) + "\n"
    )  # fmt: skip
    made = Stack(docker_env, env_file, ports, token)
    try:
        made.make("docker-build", step="docker-build (tracking + UI images)")
        yield made
    finally:
        if made.compose("ps", "-q").stdout.strip():
            logs = made.compose("logs", "--tail=30").stdout
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            (ROOT / "test-artifacts" / "docker-stack.log").write_text(logs)
        made.compose("down", "-v", "--remove-orphans")
        sizes = {}
        for image in ("mltrack-tracking:0.1.0", "mltrack-ui:0.1.0", "mltrack-test-postgres:15", BASE_IMAGE):
            size = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True,
                                  text=True, env={**os.environ, **docker_env}).stdout.strip()  # fmt: skip
            sizes[image] = f"{int(size) / 1e6:.0f} MB" if size.isdigit() else "?"
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps({"seconds": TIMINGS, "image sizes": sizes}, indent=2) + "\n")


LOG_RUNS = """
import json, sys
import numpy as np
from sklearn.linear_model import LinearRegression
import mltrack

X = np.arange(20.0).reshape(-1, 1)
model = LinearRegression().fit(X, 3 * X.ravel() + 1)
with mltrack.start_run(experiment="docker-stack", run_name="first") as run:
    mltrack.log_params({"alpha": 0.5, "layers": 3})
    for step in range(50):
        mltrack.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    version = mltrack.register_model(model=model, name="docker-stack-model", alias="champion")
"""

CHECK_RUNS = """
import json, sys
import numpy as np
from mlflow import MlflowClient
import mltrack

run_id = sys.argv[1]
client = MlflowClient()
run = client.get_run(run_id)
history = client.get_metric_history(run_id, "loss")
model = mltrack.load_model("docker-stack-model", version="@champion")
print(json.dumps({
    "run_id": run_id,
    "params": run.data.params,
    "points": len(history),
    "last_loss": history[-1].value if history else None,
    "prediction": float(model.predict(np.array([[10.0]]))[0]),
}))
"""


def _python(code: str, stack: Stack, *args: str) -> Any:
    env = {**os.environ, "MLTRACK_TRACKING_URI": stack.tracking_uri, "MLFLOW_TRACKING_URI": stack.tracking_uri}
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ui_runs(stack: Stack, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{stack.ui_url}/api/experiments", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def test_the_stack_keeps_runs_and_models_across_a_restart(stack: Stack) -> None:
    first_start = stack.up("first start (up to healthy)")

    # logging and reading back in one interpreter: each start imports MLflow and scikit-learn again
    logged = _python(LOG_RUNS + "\nsys.argv[1:] = [run.run_id]\n" + CHECK_RUNS, stack)
    before = {key: logged[key] for key in ("params", "points", "last_loss", "prediction")}
    assert before["params"] == {"alpha": "0.5", "layers": "3"}
    assert before["points"] == 50
    assert before["prediction"] == pytest.approx(31.0)

    # The UI: a token is required, and with it the experiment logged above is listed.
    assert _ui_runs(stack, None)[0] == 401
    status, experiments = _ui_runs(stack, stack.token)
    assert status == 200
    assert "docker-stack" in json.dumps(experiments)

    started = time.monotonic()
    stack.make("docker-down")
    TIMINGS["docker-down"] = round(time.monotonic() - started, 1)
    restart = stack.up("second start (up to healthy)")

    after = _python(CHECK_RUNS, stack, logged["run_id"])
    assert after == logged
    assert "docker-stack" in json.dumps(_ui_runs(stack, stack.token)[1])
    status_lines = stack.make("docker-status")
    assert "healthy" in status_lines, status_lines
    print(f"stack start-up: {first_start:.1f} s first, {restart:.1f} s after down/up")
