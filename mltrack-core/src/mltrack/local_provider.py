"""The ``local`` deploy provider: the serving app as a background process on this machine.

``deploy`` downloads the model version into MLTrack's model cache and starts
``python -m mltrack serve <that directory>`` in its own session on
127.0.0.1 (a free port unless ``port`` is given), with its output in a log file, and returns
once ``/health`` answers (or raises, with the log's last lines, after stopping the process).
A redeploy of the same name starts the new server first and stops the old one after the new
one is ready, unless both want the same port.

What it needs later (pid, port, host, log file) is kept with the deployment record and in a
small file per deployment under ``<data_dir>/deployments/local/``, which ``list`` reads.
``status`` checks that the process is alive and still the server it started (a reused pid is
not mistaken for it) and asks ``/health``; a record whose process is gone is ``failed``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mltrack.errors import DeploymentError
from mltrack.providers import DeploymentState, DeploymentStatus, DeployPlan, DeployProvider, ModelRef, Progress
from mltrack.serving.client import check_health, invoke

if TYPE_CHECKING:
    from mltrack.deployments import Deployment

STOP_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 2.0


class LocalDeploymentConfig(BaseModel):
    """One local deployment (``mltrack deploy MODEL --config port=8011``)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(None, ge=1024, le=65535, description="port to listen on (default: a free one)")
    host: Literal["127.0.0.1", "localhost", "::1"] = Field("127.0.0.1", description="loopback address to bind")
    workers: int = Field(1, ge=1, le=64, description="server worker processes")
    max_batch_size: int = Field(64, ge=1, le=100_000, description="rows per micro-batch")
    max_wait_ms: float = Field(2.0, ge=0, le=1_000, description="how long a request waits to be batched")
    startup_timeout_s: float = Field(120.0, gt=0, le=3_600, description="how long the server may take to answer")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the server")


class LocalSettings(BaseModel):
    """``[tool.mltrack.plugins.local]``."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(None, description="interpreter that runs the servers (default: this one)")


class LocalProvider(DeployProvider):
    """Serves models from background processes on 127.0.0.1."""

    name = "local"
    Settings = LocalSettings
    DeploymentConfig = LocalDeploymentConfig
    default_timeout_s = 120.0
    poll_interval_s = 0.2

    # -- plan and deploy ----------------------------------------------------------------------

    def plan(self, model: ModelRef, name: str, config: Any, *, replaces: Deployment | None = None) -> DeployPlan:
        assert isinstance(config, LocalDeploymentConfig)
        where = f"{config.host}:{config.port}" if config.port else f"{config.host}:<free port>"
        actions = [
            f"download {model.uri} into the local model cache",
            f"start `mltrack serve` on {where} for {model.name} v{model.version} "
            f"({config.workers} worker{'s' if config.workers > 1 else ''})",
            "wait for /health to answer",
        ]
        if replaces is not None:
            pid = replaces.details.get("pid")
            actions.append(f"stop the server of {replaces.id} (v{replaces.model_version}, pid {pid})")
        return DeployPlan(
            provider=self.name,
            name=name,
            model=model,
            config=config,
            actions=actions,
            resources={"process": f"mltrack serve {model.name} v{model.version}", "address": where},
            url=f"http://{_url_host(config.host)}:{config.port}" if config.port else None,
            replaces=replaces,
        )

    def deploy(self, plan: DeployPlan, progress: Progress) -> DeploymentStatus:
        config = plan.config
        assert isinstance(config, LocalDeploymentConfig)
        replaced = plan.replaces
        stop_first = (
            replaced is not None
            and config.port is not None
            and replaced.details.get("port") == config.port
            and replaced.details.get("host") == socket.gethostname()
        )
        progress.step(f"downloading {plan.model.uri}")
        # served from the local model cache: the server starts without asking the registry
        model_dir = plan.model.download()
        if replaced is not None and stop_first:
            progress.step(f"stopping {replaced.id} (it holds port {config.port})")
            self._stop(replaced.details, progress)
        port = config.port or _free_port(config.host)
        if not _port_free(config.host, port):
            raise DeploymentError(
                f"port {port} on {config.host} is already in use", hint="choose another port or leave it unset"
            )
        log_file = _state_dir() / f"{plan.name}.log"
        command = [
            self.settings.python or sys.executable,  # type: ignore[attr-defined]
            "-m",
            "mltrack",
            "serve",
            str(model_dir),
            "--host",
            config.host,
            "--port",
            str(port),
            "--workers",
            str(config.workers),
            "--max-batch-size",
            str(config.max_batch_size),
            "--max-wait-ms",
            str(config.max_wait_ms),
        ]
        env = {**os.environ, "MLTRACK_TRACKING_URI": plan.model.tracking_uri, **config.env}
        progress.step(f"starting the server on {config.host}:{port}")
        with log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        url = f"http://{_url_host(config.host)}:{port}"
        details = {
            "pid": process.pid,
            "port": port,
            "host": socket.gethostname(),
            "bind": config.host,
            "log_file": str(log_file),
            "started_at": time.time(),
            "startup_timeout_s": config.startup_timeout_s,
        }
        _state_file(plan.name).write_text(json.dumps({"name": plan.name, "url": url, **details}))
        try:
            self._wait_ready(process, url, config.startup_timeout_s, log_file, progress)
        except BaseException:
            self._stop(details, progress)
            _state_file(plan.name).unlink(missing_ok=True)
            raise
        if replaced is not None and not stop_first:
            progress.step(f"stopping the previous server of {replaced.id} (v{replaced.model_version})")
            self._stop(replaced.details, progress)
        return DeploymentStatus(DeploymentState.READY, url=url, message="serving", details=details)

    def _wait_ready(
        self, process: subprocess.Popen[bytes], url: str, timeout: float, log_file: Path, progress: Progress
    ) -> None:
        start = time.monotonic()
        while True:
            code = process.poll()
            if code is not None:
                raise DeploymentError(
                    f"the server exited with code {code} before answering: {_last_line(log_file)}",
                    hint=f"see the log: {log_file}",
                )
            if _health(url) is True:
                return
            waited = time.monotonic() - start
            progress.advance(waited, timeout)
            if waited > timeout:
                raise DeploymentError(
                    f"the server did not answer /health within {timeout:.0f} s", hint=f"see the log: {log_file}"
                )
            time.sleep(0.1)

    # -- status, requests, logs -------------------------------------------------------------

    def status(self, deployment: Deployment) -> DeploymentStatus:
        details = deployment.details
        if not details.get("pid"):
            return DeploymentStatus(deployment.state, deployment.url, deployment.message)
        if details.get("host") != socket.gethostname():
            return DeploymentStatus(
                deployment.state,
                deployment.url,
                f"runs on host {details.get('host')}; its live status is only visible there",
            )
        if not _is_our_server(details):
            return DeploymentStatus(
                DeploymentState.FAILED,
                deployment.url,
                f"the server process {details['pid']} is gone; last log line: {_last_line(Path(details['log_file']))}",
            )
        healthy = _health(str(deployment.url))
        if healthy is True:
            return DeploymentStatus(DeploymentState.READY, deployment.url, "serving")
        started = float(details.get("started_at", 0))
        starting = time.time() - started < float(details.get("startup_timeout_s", 120))
        if deployment.state is DeploymentState.PENDING and starting:  # a server that was ready is not "starting"
            return DeploymentStatus(DeploymentState.PENDING, deployment.url, "starting")
        return DeploymentStatus(
            DeploymentState.FAILED, deployment.url, f"the server process runs but /health fails: {healthy}"
        )

    def predict(self, deployment: Deployment, payload: dict[str, Any]) -> Any:
        if not deployment.url:
            raise DeploymentError(f"deployment {deployment.id} has no URL (state {deployment.state})")
        return invoke(deployment.id, deployment.url, payload, timeout=60)

    def logs(self, deployment: Deployment, *, tail: int = 100) -> list[str]:
        log_file = deployment.details.get("log_file")
        if not log_file:
            return []
        return _tail(Path(log_file), tail)

    def list(self) -> list[DeploymentStatus]:
        found = []
        for path in sorted(_state_dir().glob("*.json")):
            try:
                details = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            alive = _is_our_server(details)
            state = DeploymentState.READY if alive and _health(details["url"]) is True else DeploymentState.FAILED
            found.append(
                DeploymentStatus(state, details.get("url"), "serving" if alive else "process gone", details=details)
            )
        return found

    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        details = deployment.details
        if details.get("host") not in (None, socket.gethostname()):
            raise DeploymentError(
                f"deployment {deployment.id} runs on host {details.get('host')}",
                hint="delete it on that machine",
            )
        progress.step(f"stopping {deployment.id}")
        self._stop(details, progress)
        _state_file(deployment.name).unlink(missing_ok=True)
        return DeploymentStatus(DeploymentState.DELETED, deployment.url, "stopped")

    def _stop(self, details: dict[str, Any], progress: Progress) -> None:
        """SIGTERM the server's process group (it drains in-flight requests), SIGKILL after 30 s."""
        if not _is_our_server(details):
            return
        pid = int(details["pid"])
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            progress.advance(STOP_TIMEOUT_S - (deadline - time.monotonic()), STOP_TIMEOUT_S)
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _alive(pid)


# -- processes and HTTP -----------------------------------------------------------------------


def _state_dir() -> Path:
    from mltrack.config import get_settings

    path = Path(get_settings().data_dir) / "deployments" / "local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _state_file(name: str) -> Path:
    return _state_dir() / f"{name}.json"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child of this process is reaped and counts as gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: the kernel's answer below is enough
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _is_our_server(details: dict[str, Any]) -> bool:
    """Whether the recorded pid still is the server we started (not a reused pid)."""
    pid = details.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return b"serve" in argv and str(details.get("port")).encode() in argv


def _health(url: str) -> bool | str:
    """True when ``url``/health answers 200, else a short reason."""
    health = check_health(url, HEALTH_TIMEOUT_S)
    return True if health.ok else health.reason


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            chunk = min(size, max(4096, lines * 400))
            handle.seek(size - chunk)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []


def _last_line(path: Path) -> str:
    """The line that says what went wrong: the server's last ``Error:`` line (its hint line
    follows it), else the last line of the log."""
    meaningful = [line.strip() for line in _tail(path, 50) if line.strip()]
    errors = [line for line in meaningful if line.startswith("Error:") or "Error: " in line]
    if errors:
        return errors[-1].removeprefix("Error: ")
    return meaningful[-1] if meaningful else "(empty log)"
