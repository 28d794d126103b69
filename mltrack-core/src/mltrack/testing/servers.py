"""Real servers on 127.0.0.1 for tests and benchmarks: PostgreSQL, MariaDB and ``mlflow server``, and a
TCP proxy that a test switches off to stage an outage of a server without restarting it.

Each server runs in its own process group (``start_new_session``) and ``stop()`` kills
the whole group: ``mlflow server`` leaves children behind if only its parent dies.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s: {last}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Stop a server's whole process group and wait until every member is gone, so
    its port is really closed when this returns (a worker can outlive the parent)."""
    if process is None:
        return
    pgid = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.poll()  # reap the leader so the group can disappear
            if not _group_alive(pgid):
                return
            time.sleep(0.05)
    process.poll()


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian layout), if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A throwaway PostgreSQL cluster with an ``mlflow`` database."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        self.bin_dir = postgres_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self._as_postgres = os.geteuid() == 0

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://mlflow:mlflow@127.0.0.1:{self.port}/mlflow"

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-c", command] if self._as_postgres else ["bash", "-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command!r} failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    def start(self) -> PostgresServer:
        data = self.base_dir / "data"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base_dir, "postgres", "postgres")
        b = self.bin_dir
        self._run(f"{b}/initdb -D {data} -U postgres --auth=trust -E UTF8")
        self._run(
            f"{b}/pg_ctl -D {data} -o '-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base_dir}' "
            f"-l {self.base_dir}/log -w start"
        )
        self._run(
            f"{b}/psql -h 127.0.0.1 -p {self.port} -U postgres -c \"CREATE USER mlflow PASSWORD 'mlflow'\" "
            "-c 'CREATE DATABASE mlflow OWNER mlflow'"
        )
        return self

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database owned by ``mlflow`` (a copy of ``template``, which takes a fraction of a
        second where MLflow's migrations take seconds); returns its URI."""
        copy = f" TEMPLATE {template}" if template else ""
        psql = f"{self.bin_dir}/psql -h 127.0.0.1 -p {self.port} -U postgres"
        self._run(f"{psql} -c 'CREATE DATABASE {name} OWNER mlflow{copy}'")
        return self.uri.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        try:
            self._run(f"{self.bin_dir}/pg_ctl -D {self.base_dir / 'data'} -m immediate -w stop")
        except RuntimeError:
            pass


@dataclass(frozen=True)
class MariaDBBinaries:
    """The MariaDB programs a throwaway server needs (Debian puts them in two folders)."""

    server: Path  # mariadbd
    install_db: Path  # mariadb-install-db
    client: Path  # mariadb


def mariadb_binaries() -> MariaDBBinaries | None:
    """The installed MariaDB server, its data directory initialiser and its client, if all three
    are found (on ``PATH`` or in ``/usr/sbin``, where Debian puts ``mariadbd``)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    found = [shutil.which(name, path=search) for name in ("mariadbd", "mariadb-install-db", "mariadb")]
    if not all(found):
        return None
    server, install_db, client = (Path(str(f)) for f in found)
    return MariaDBBinaries(server, install_db, client)


class MariaDBServer:
    """A throwaway MariaDB server on 127.0.0.1 with an ``mlflow`` database and user.

    The data directory lives in ``base_dir`` (with the socket, the pid file and the error log);
    run as root, the server runs as the ``mysql`` user, so ``base_dir``'s parents must let that
    user through (a folder made by ``tempfile.mkdtemp`` and opened with ``chmod 0o755``, not
    pytest's 0700 tree). Durability is off (no doublewrite, no flush at commit): the server lives
    for one test session, and MLflow's migrations run a third faster.

    Usage::

        mariadb = MariaDBServer(base / "mariadb").start()
        client = MlflowClient(mariadb.uri)  # mysql+pymysql://mlflow:mlflow@127.0.0.1:PORT/mlflow
        ...
        mariadb.stop()
    """

    # Both the initialiser and the server: InnoDB must find the files it was created with.
    _INNODB = (
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
        "--innodb-buffer-pool-dump-at-shutdown=0",
        "--innodb-buffer-pool-load-at-startup=0",
    )

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        binaries = mariadb_binaries()
        if binaries is None:
            raise RuntimeError(
                "MariaDB is not installed (mariadbd, mariadb-install-db and mariadb not found): "
                "apt-get install -y mariadb-server, or make system-deps"
            )
        self.binaries = binaries
        self.process: subprocess.Popen[bytes] | None = None
        # mariadbd refuses to run as root: it switches to the Debian package's mysql user
        self._user = ["--user=mysql"] if os.geteuid() == 0 else []

    @property
    def uri(self) -> str:
        """The ``mlflow`` database's SQLAlchemy URI (the PyMySQL driver: ``pip install pymysql``)."""
        return f"mysql+pymysql://mlflow:mlflow@127.0.0.1:{self.port}/mlflow"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "error.log"

    def _sql(self, statements: str) -> None:
        """Run ``statements`` as MariaDB's root user (no password: a throwaway server on loopback)."""
        argv = [str(self.binaries.client), "--no-defaults", "--protocol=socket", f"--socket={self.base_dir / 'sock'}"]
        done = subprocess.run([*argv, "-uroot", "-e", statements], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{statements!r} failed ({done.returncode}): {done.stderr.strip()[-500:]}")

    def start(self, timeout: float = 60.0) -> MariaDBServer:
        data = self.base_dir / "data"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            shutil.chown(self.base_dir, "mysql", "mysql")
        done = subprocess.run(
            [
                str(self.binaries.install_db),
                "--no-defaults",
                f"--datadir={data}",
                *self._user,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                *self._INNODB,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.base_dir,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        self.process = subprocess.Popen(
            [
                str(self.binaries.server),
                "--no-defaults",
                f"--datadir={data}",
                *self._user,
                "--bind-address=127.0.0.1",
                "--skip-networking=0",
                f"--port={self.port}",
                f"--socket={self.base_dir / 'sock'}",
                f"--pid-file={self.base_dir / 'mariadbd.pid'}",
                f"--log-error={self.log_path}",
                "--skip-log-bin",
                *self._INNODB,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait(timeout)
            # utf8mb4_bin: keys that differ only in case are two keys, as on sqlite and PostgreSQL
            # (MariaDB's default collation is case-insensitive; latin1 would refuse most Unicode).
            self._sql(
                "CREATE USER 'mlflow'@'%' IDENTIFIED BY 'mlflow'; "
                "CREATE DATABASE mlflow CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; "
                "GRANT ALL ON mlflow.* TO 'mlflow'@'%'"
            )
        except Exception:
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}; log: {self._log_tail()}")
            try:
                self._sql("SELECT 1")
                return
            except RuntimeError as error:
                last = str(error)
            time.sleep(0.1)
        raise TimeoutError(f"mariadbd did not answer within {timeout:.0f}s: {last}; log: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return f"{self.log_path} not written"

    def create_database(self, name: str) -> str:
        """A new, empty database the ``mlflow`` user owns (MLflow creates its tables on first
        use, in ~10 s); returns its URI."""
        self._sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; "
            f"GRANT ALL ON `{name}`.* TO 'mlflow'@'%'"
        )
        return self.uri.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        """Stop the server running in ``base_dir``: the one ``start()`` started, or, on an object
        made with the same ``base_dir`` in another process (pytest-xdist's controller after its
        workers shared one server), the one its pid file names."""
        if self.process is not None:
            _stop_group(self.process, timeout=10.0)
            self.process = None
            return
        pid_file = self.base_dir / "mariadbd.pid"
        try:
            pgid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return  # not running (mariadbd removes its pid file when it stops)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 10.0
            # not our child: its pid file going away (a clean shutdown) is what there is to wait for
            while time.monotonic() < deadline and pid_file.exists():
                time.sleep(0.05)
            if not pid_file.exists():
                return


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with the given backend store."""

    def __init__(
        self,
        backend_uri: str,
        artifacts_dir: Path,
        port: int | None = None,
        workers: int = 1,
        *,
        artifacts_destination: str | None = None,
        env: Mapping[str, str] | None = None,
        app_name: str | None = None,
        jobs: bool = False,
    ) -> None:
        """``artifacts_destination`` (e.g. ``s3://bucket/mlartifacts``) replaces ``artifacts_dir``
        as what the server's proxy writes to; ``env`` is added to the server's environment (an
        object store's endpoint and keys: the server, not the client, talks to the bucket);
        ``app_name`` is ``mlflow server --app-name`` (``basic-auth``, whose configuration file
        ``MLFLOW_AUTH_CONFIG_PATH`` and ``MLFLOW_FLASK_SERVER_SECRET_KEY`` then go in ``env``).
        ``jobs`` keeps MLflow's job runner (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``: seven huey
        consumer processes for MLflow's GenAI jobs), off by default: nothing of MLTrack uses it, and
        it costs each start ~10 s of CPU and each stop a longer wait."""
        self.backend_uri = backend_uri
        self.artifacts_dir = Path(artifacts_dir)
        self.port = port or free_port()
        self.workers = workers
        self.artifacts_destination = artifacts_destination or str(self.artifacts_dir)
        self.extra_env = dict(env or {})
        self.app_name = app_name
        self.jobs = jobs
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.artifacts_dir.parent / f"mlflow-server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> MlflowServer:
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "true" if self.jobs else "false"
        env.update(self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.backend_uri,
                "--artifacts-destination",
                self.artifacts_destination,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *(["--app-name", self.app_name] if self.app_name else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        try:
            wait_for_http(f"{self.url}/health", timeout, self.process)
        except Exception:
            self.stop()
            raise RuntimeError(f"mlflow server failed to start; log: {self.log_path}") from None
        return self

    def stop(self) -> None:
        # MLflow 3's job consumers (huey) sit out a SIGTERM for ~10 s; every write the server
        # answered is already committed, so a short grace is enough before SIGKILL.
        _stop_group(self.process, timeout=2.0)
        self.process = None


class TcpProxy:
    """A TCP forwarder from 127.0.0.1:``port`` to 127.0.0.1:``target_port`` that a test cuts to
    stage an outage: ``cut()`` closes the listening socket and every open connection (clients
    see "connection refused", as with a stopped server), ``restore()`` listens on the same port
    again. A server shared by the whole session then stands in for one a test would stop and
    restart (each ``mlflow server`` start costs seconds).

    Usage::

        with TcpProxy(server_port) as proxy:
            client_url = proxy.url
            proxy.cut()      # the server is "down"
            proxy.restore()  # and back
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restore() rebinds the port at once
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy-accept", daemon=True).start()
        return self

    restore = start

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            open_sockets, self._open = self._open, set()
        for sock in open_sockets:
            _close(sock)

    stop = cut

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while this one connected
                    _close(client)
                    _close(upstream)
                    return
                self._open.update((client, upstream))
            pending = [2]  # both directions of the pair; the sockets close when both are done
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, pending), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, pending: list[int]) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)  # pass the half-close on; the other way may still talk
        except OSError:  # reset, or cut(): drop the pair
            _close(source)
            _close(target)
        with self._lock:
            pending[0] -= 1
            if pending[0]:
                return
            self._open.discard(source)
            self._open.discard(target)
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
