"""``ProcessProvider``: a deploy provider whose server is a process (or container) started here.

The common case of a team's provider is "run the serving app the way we run things": a
``python -m mltrack serve`` under another interpreter or at a lower priority, a container in the
foreground (``docker run --rm ...``), a job under a site's launcher. A ``ProcessProvider``
subclass says only how to start it, in ``command``; the base class does the rest, as the
built-in ``local`` provider (a subclass) does:

- ``plan`` lists what deploying would do, without side effects;
- ``deploy`` downloads the model into the local model cache, starts the command in a session of
  its own (it leads a process group that holds all it starts) with its output in a log file,
  and returns once ``<url>/health`` answers; on failure it stops the group and raises with the
  log's last meaningful line. A redeploy starts the new server, then stops the old one (first,
  when both want the same port);
- ``status`` looks at the whole process group and at who holds the port; ``predict`` posts to
  ``/invocations``; ``logs`` tails the log file; ``list`` reads the state folder
  ``<data_dir>/deployments/<provider>/`` (one JSON file per deployment), so a server that a
  killed deploy left behind is still found; ``delete`` sends SIGTERM to the group, SIGKILL after
  ``STOP_TIMEOUT_S``, and waits until none of it is left.

Each server's environment carries a random token (``TOKEN_ENV``), recorded with it, that tells
its processes from an unrelated group that got the same id later.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from mltrack.config.settings import get_settings
from mltrack.deployment.providers import (
    DeploymentState,
    DeploymentStatus,
    DeployPlan,
    DeployProvider,
    ModelRef,
    Progress,
)
from mltrack.errors import DeploymentError
from mltrack.serving.client import check_health, invoke
from mltrack.serving.server import ACCESS_LOG_ENV

if TYPE_CHECKING:
    from mltrack.deployment.deployments import Deployment

__all__ = [
    "ProcessDeploymentConfig",
    "ProcessProvider",
    "serve_command",
]

#: how long a server may take to exit after SIGTERM (in-flight requests finish) before SIGKILL
STOP_TIMEOUT_S = 30.0
#: how long processes may take to vanish after SIGKILL (only a process stuck in the kernel takes long)
KILL_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 2.0
#: the environment variable that carries a server's token into every process of its group
TOKEN_ENV = "MLTRACK_LOCAL_SERVER_TOKEN"
_PROC = Path("/proc")


class ProcessDeploymentConfig(BaseModel):
    """The ``config=`` of one deployment of a ``ProcessProvider``; subclass it to add fields."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(None, ge=1024, le=65535, description="port to listen on (default: a free one)")
    host: Literal["127.0.0.1", "localhost", "::1"] = Field("127.0.0.1", description="loopback address to bind")
    startup_timeout_s: float = Field(120.0, gt=0, le=3_600, description="how long the server may take to answer")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the server")


ConfigT = TypeVar("ConfigT", bound=ProcessDeploymentConfig)


def serve_command(
    model_dir: Path | str,
    host: str,
    port: int,
    *,
    python: str | None = None,
    workers: int = 1,
    max_batch_size: int | None = None,
    max_wait_ms: float | None = None,
) -> list[str]:
    """The command line that serves ``model_dir`` with MLTrack's serving app on ``host:port``.

    Args:
        model_dir: an MLflow model directory (``ModelRef.download()`` gives one).
        python: the interpreter to run it with (default: this one); it needs ``mltrack-core``
            and the model's flavour installed.
        workers: ``mltrack serve --workers``.
        max_batch_size: ``mltrack serve --max-batch-size`` (None: its default).
        max_wait_ms: ``mltrack serve --max-wait-ms`` (None: its default).
    """
    command = [python or sys.executable, "-m", "mltrack", "serve", str(model_dir), "--host", host]
    command += ["--port", str(port), "--workers", str(workers)]
    if max_batch_size is not None:
        command += ["--max-batch-size", str(max_batch_size)]
    if max_wait_ms is not None:
        command += ["--max-wait-ms", str(max_wait_ms)]
    return command


class ProcessProvider(DeployProvider[ConfigT]):
    """A provider that serves each deployment from a process (or container) it starts here.

    Subclass it with ``name``, a ``DeploymentConfig`` (a ``ProcessDeploymentConfig`` subclass, or
    that class itself) and ``command``; everything else (plan, deploy with a health wait, status,
    predict, logs, list, delete with a process-group stop, the state folder) is done here.
    ``environment`` and ``describe`` may be overridden too.
    """

    DeploymentConfig: ClassVar[type[BaseModel]] = ProcessDeploymentConfig
    default_timeout_s = 120.0
    poll_interval_s = 0.2
    #: whether a process of the server's own group listens on its port. Set False where another
    #: process holds it (a container runtime's port proxy, a VM): ``status`` then trusts ``/health``.
    owns_port: ClassVar[bool] = True

    @abstractmethod
    def command(self, config: ConfigT, model_dir: Path, port: int) -> list[str]:
        """The command that starts a server of ``model_dir`` answering on ``config.host:port``.

        It must stay in the foreground (its exit means the server is gone), answer
        ``GET /health`` and MLflow's ``POST /invocations`` on that address (``serve_command``
        builds the one for MLTrack's serving app), and exit on SIGTERM.
        """

    def environment(self, config: ConfigT) -> dict[str, str]:
        """Environment variables the server gets on top of this process's (``config.env`` wins)."""
        return {}

    def describe(self, config: ConfigT) -> str:
        """What ``plan`` calls the server it starts (e.g. "a container of team/serving")."""
        return f"a {self.name} server"

    # -- the DeployProvider methods -------------------------------------------------------------

    def plan(
        self, model: ModelRef, name: str, config: ConfigT, *, replaces: Deployment | None = None
    ) -> DeployPlan[ConfigT]:
        config = self._config(config)
        where = f"{config.host}:{config.port}" if config.port else f"{config.host}:<free port>"
        actions = [
            f"download {model.uri} into the local model cache",
            f"start {self.describe(config)} on {where} for {model.name} v{model.version}",
            "wait for /health to answer",
        ]
        if replaces is not None:
            pid = replaces.details.get("pgid", replaces.details.get("pid"))
            actions.append(f"stop the server of {replaces.id} (v{replaces.model_version}, process group {pid})")
        return DeployPlan(
            provider=self.name,
            name=name,
            model=model,
            config=config,
            actions=actions,
            resources={"process": f"{self.describe(config)} for {model.name} v{model.version}", "address": where},
            url=f"http://{_url_host(config.host)}:{config.port}" if config.port else None,
            replaces=replaces,
        )

    def deploy(self, plan: DeployPlan[ConfigT], progress: Progress) -> DeploymentStatus:
        config = self._config(plan.config)
        # the recorded server and the one in the state file (they differ when a deploy died
        # between starting its server and recording it): both give way to the new one
        recorded = plan.replaces.details if plan.replaces is not None else {}
        previous = self._servers_of(recorded, plan.name)
        on_our_port = [p for p in previous if config.port is not None and p.get("port") == config.port]
        progress.step(f"downloading {plan.model.uri}")
        # served from the local model cache: the server starts without asking the registry
        model_dir = plan.model.download()
        for server in on_our_port:
            progress.step(f"stopping the previous server of {self.name}/{plan.name} (it holds port {config.port})")
            _stop_group(server, progress)
        port = config.port or _free_port(config.host)
        if not _port_free(config.host, port):
            raise DeploymentError(
                f"port {port} on {config.host} is already in use", hint="choose another port or leave it unset"
            )
        log_file = self.state_dir() / f"{plan.name}.log"
        command = self.command(config, model_dir, port)
        token = uuid.uuid4().hex
        env = {
            **os.environ,
            "MLTRACK_TRACKING_URI": plan.model.tracking_uri,
            # one line per request in the log file (`mltrack deployments logs`); config.env may say "0"
            ACCESS_LOG_ENV: "1",
            **self.environment(config),
            **config.env,
            TOKEN_ENV: token,
        }
        state_file = self._state_file(plan.name)
        previous_state = _read_state(state_file)
        progress.step(f"starting the server on {config.host}:{port}")
        with log_file.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # a session of its own: the server leads a process group that holds all it
                    # starts, and a Ctrl-C meant for `mltrack deploy` does not reach it
                    start_new_session=True,
                )
            except OSError as exc:
                raise DeploymentError(
                    f"could not start {command[0]!r}: {exc.strerror or exc}",
                    hint=f"check the command of the {self.name!r} provider and that {command[0]!r} is installed",
                ) from None
        url = f"http://{_url_host(config.host)}:{port}"
        details: dict[str, Any] = {
            "pid": process.pid,
            "pgid": process.pid,  # a session leader's group id is its pid
            "token": token,
            "port": port,
            "host": socket.gethostname(),
            "bind": config.host,
            "log_file": str(log_file),
            "started_at": time.time(),
            "startup_timeout_s": config.startup_timeout_s,
        }
        # written before waiting: a deploy killed while its server starts leaves it findable
        _write_state(state_file, {"name": plan.name, "url": url, **details})
        try:
            _wait_ready(process, url, config.startup_timeout_s, log_file, progress)
        except BaseException:
            _stop_group(details, progress)
            if previous_state is not None and _group_of(previous_state).members():
                _write_state(state_file, previous_state)  # the previous server still runs
            else:
                state_file.unlink(missing_ok=True)
            raise
        details["pids"] = _group_of(details).members()  # a worker still loading may be missing
        _write_state(state_file, {"name": plan.name, "url": url, **details})
        for server in previous:
            if server not in on_our_port:
                progress.step(
                    f"stopping the previous server of {self.name}/{plan.name} (process group {server['pid']})"
                )
                left = _stop_group(server, progress)
                if left:
                    progress.step(f"processes {left} of the previous server survived SIGKILL")
        return DeploymentStatus(DeploymentState.READY, url=url, message="serving", details=details)

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
        return self._live_status(details, str(deployment.url), pending=deployment.state is DeploymentState.PENDING)

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
        for path in sorted(self.state_dir().glob("*.json")):
            details = _read_state(path)
            if details is None or not details.get("pid"):
                continue
            live = self._live_status(details, str(details.get("url")), pending=False)
            found.append(DeploymentStatus(live.state, details.get("url"), live.message, details=details))
        return found

    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        details = deployment.details
        if details.get("host") not in (None, socket.gethostname()):
            raise DeploymentError(
                f"deployment {deployment.id} runs on host {details.get('host')}",
                hint="delete it on that machine",
            )
        progress.step(f"stopping {deployment.id}")
        left = []
        for server in self._servers_of(details, deployment.name):
            left += _stop_group(server, progress)
        if left:
            raise DeploymentError(
                f"processes {', '.join(map(str, left))} of {deployment.id} are still there "
                f"{KILL_TIMEOUT_S:g} s after SIGKILL",
                hint="they are stuck in the kernel (see `ps -o pid,stat,wchan -p PID`); delete again later",
            )
        self._state_file(deployment.name).unlink(missing_ok=True)
        return DeploymentStatus(DeploymentState.DELETED, deployment.url, "stopped")

    # -- state ------------------------------------------------------------------------------

    def state_dir(self) -> Path:
        """This provider's local state folder, ``<data_dir>/deployments/<name>/`` (created on use):
        one ``<deployment>.json`` and ``<deployment>.log`` per deployment."""

        path = Path(get_settings().data_dir) / "deployments" / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _state_file(self, name: str) -> Path:
        return self.state_dir() / f"{name}.json"

    def _config(self, config: Any) -> ConfigT:
        if not isinstance(config, self.DeploymentConfig):
            # the core validates every config against DeploymentConfig before a provider sees it
            raise TypeError(f"{self.name} got a {type(config).__name__}, not its {self.DeploymentConfig.__name__}")
        return config  # type: ignore[return-value]

    # builtins.list: inside this class `list` names the DeployProvider method
    def _servers_of(self, recorded: dict[str, Any], name: str) -> builtins.list[dict[str, Any]]:
        """The servers of the deployment ``name``: the recorded one and the one in its state file."""
        here = recorded.get("host") in (None, socket.gethostname())
        servers = [recorded] if recorded.get("pid") and here else []
        on_file = _read_state(self._state_file(name))
        if on_file is not None and on_file.get("pid") and all(s.get("pid") != on_file.get("pid") for s in servers):
            servers.append(on_file)
        return servers

    def _live_status(self, details: dict[str, Any], url: str, *, pending: bool) -> DeploymentStatus:
        return _live_status(details, url, pending=pending, owns_port=self.owns_port)


# -- processes and HTTP -----------------------------------------------------------------------


def _wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float, log_file: Path, progress: Progress) -> None:
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


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        details = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return details if isinstance(details, dict) else None


def _write_state(path: Path, details: dict[str, Any]) -> None:
    # replaced whole, so `list` and `delete` in other processes never read half a file
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(details))
    partial.replace(path)


class ServerGroup(NamedTuple):
    """The process group of one server: its id (the leader's pid) and the token its processes carry."""

    pgid: int
    token: str | None
    port: int | None

    def members(self) -> list[int]:
        """The live processes of the group that belong to this server (zombies do not count).

        A group id is not handed out again while any process of the group lives (Linux
        and the BSDs skip such pids), so membership almost identifies the server; the
        token rules out a new group that got the same id after all of ours had exited.
        Where there is no /proc (macOS), ``ps`` lists the group and the token is not
        checked: ``ps -E`` shows environments only in part, and the leftover risk (every
        process of ours gone and a new session leader with the same pid) is small.
        """
        if not _PROC.joinpath("self", "stat").is_file():
            return _members_from_ps(self.pgid)
        found = []
        for entry in os.scandir(_PROC):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            stat = _proc_stat(pid)
            if stat is None or stat[1] != self.pgid:
                continue
            if stat[0] == "Z":
                _reap(pid)
                continue
            if self.token is not None and not _carries(pid, self.token):
                continue
            if self.token is None and pid == self.pgid and not _legacy_server(pid, self.port):
                return []  # a record from before tokens whose pid now names something else
            found.append(pid)
        return sorted(found)


def _group_of(details: dict[str, Any]) -> ServerGroup:
    port = details.get("port")
    return ServerGroup(
        int(details.get("pgid") or details["pid"]), details.get("token"), port if isinstance(port, int) else None
    )


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc, or None once it is gone."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def _carries(pid: int, token: str) -> bool:
    try:
        environment = (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False  # not ours to read: not a process we started
    return f"{TOKEN_ENV}={token}".encode() in environment


def _legacy_server(pid: int, port: int | None) -> bool:
    try:
        argv = (_PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and str(port).encode() in argv


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is a dead child of this process (a deploy run in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _members_from_ps(pgid: int) -> list[int]:
    try:
        listing = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [pgid] if _alive(pgid) else []
    found = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit() or fields[1] != str(pgid):
            continue
        if fields[2].startswith("Z"):
            _reap(int(fields[0]))
            continue
        found.append(int(fields[0]))
    return sorted(found)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holds_port(pids: list[int], port: int) -> bool | None:
    """Whether one of ``pids`` holds the listening socket of ``port``; None where it cannot be told.

    On Linux the kernel's socket table (/proc/net/tcp and tcp6) names the listening socket's
    inode, and /proc/<pid>/fd shows who holds it, without asking the server anything. Where
    there is no /proc (macOS) this is unknown, and ``/health`` answering, with a process of
    the group alive, stands for it.
    """
    inodes: set[str] = set()
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            rows = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # local address "0100007F:1F90", state 0A = LISTEN, inode
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not readable:
        return None
    for pid in pids:
        try:
            fds = os.listdir(_PROC / str(pid) / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(_PROC / str(pid) / "fd" / fd) in inodes:
                    return True
            except OSError:
                continue
    return False


def _live_status(details: dict[str, Any], url: str, *, pending: bool, owns_port: bool = True) -> DeploymentStatus:
    """What the server of ``details`` does now, judged by its whole process group and its port."""
    group = _group_of(details)
    members = group.members()
    healthy = _health(url)
    port = details.get("port")
    if not members:
        message = f"the server process {details['pid']} is gone; last log line: {_last_line(Path(details['log_file']))}"
        if healthy is True:
            message += f" (port {port} answers, but from another process)"
        return DeploymentStatus(DeploymentState.FAILED, url, message)
    holds = _holds_port(members, port) if owns_port and isinstance(port, int) else None
    if healthy is True and holds is False:
        return DeploymentStatus(
            DeploymentState.FAILED,
            url,
            f"port {port} answers, but none of the server's processes ({_pids(members)}) listens on it",
        )
    supervisor_gone = group.pgid not in members
    if healthy is True:
        if supervisor_gone:
            return DeploymentStatus(
                DeploymentState.READY,
                url,
                f"serving from processes {_pids(members)}, but their supervisor (pid {group.pgid}) is gone, "
                "so a worker that exits is not replaced: deploy again to restore it",
            )
        return DeploymentStatus(DeploymentState.READY, url, "serving")
    started = float(details.get("started_at", 0))
    starting = time.time() - started < float(details.get("startup_timeout_s", 120))
    if pending and starting and not supervisor_gone:  # a server that was ready is not "starting"
        return DeploymentStatus(DeploymentState.PENDING, url, "starting")
    if supervisor_gone:
        return DeploymentStatus(
            DeploymentState.FAILED,
            url,
            f"the supervisor (pid {group.pgid}) is gone and its processes {_pids(members)} do not answer "
            f"/health: {healthy}",
        )
    return DeploymentStatus(DeploymentState.FAILED, url, f"the server process runs but /health fails: {healthy}")


def _pids(pids: list[int]) -> str:
    return ", ".join(map(str, pids))


def _stop_group(details: dict[str, Any], progress: Progress) -> list[int]:
    """Stop every process of a server's group: SIGTERM (in-flight requests finish), SIGKILL
    after ``STOP_TIMEOUT_S``. Returns the processes still there afterwards (none, unless
    one is stuck in the kernel).

    The whole group, not the recorded pid: with several workers the supervisor may be gone
    while its workers still serve, and they are what must stop.
    """
    group = _group_of(details)
    # signalled only while a process of ours is in it: the group id cannot have been reused then
    left = group.members()
    if not left:
        return []
    for sig, limit in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, KILL_TIMEOUT_S)):
        try:
            os.killpg(group.pgid, sig)
        except ProcessLookupError:
            return []
        deadline = time.monotonic() + limit
        while (left := group.members()) and time.monotonic() < deadline:
            progress.advance(limit - (deadline - time.monotonic()), limit)
            time.sleep(0.05)
        if not left:
            return []
    return left


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
