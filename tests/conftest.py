"""Shared fixtures: real MLflow stores (sqlite, mlflow server on PostgreSQL, and MariaDB).

Our own tests run with strict plugins; the deliberately broken fixture plugins are
disabled here and enabled only by the tests that exercise them (in subprocesses).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mltrack.testing.servers import MariaDBServer, PostgresServer

BROKEN_FIXTURES = "broken-import,misspelled-hook"
# For a child process that a test kills and whose spool it then replays: nothing may be delivered before
# the kill. The writer is the child's own thread (it dies with it), waking only after a minute; a writer
# process could deliver first on a busy machine.
NOTHING_DELIVERED_BEFORE_KILL = {"MLTRACK_WRITER": "thread", "MLTRACK_FLUSH_INTERVAL_MS": "60000"}
FIXTURES = Path(__file__).parent / "fixtures"
# The test plugins (two of them broken on purpose) live in their own site folder, seen only by
# the tests and the processes they start: the development .venv stays free of them.
FIXTURE_SITE = Path(__file__).parent / ".fixture-site"


def _fixture_site_is_current() -> bool:
    stamp = FIXTURE_SITE / ".built"
    if not stamp.exists():
        return False
    built = stamp.stat().st_mtime
    return all(
        f.stat().st_mtime <= built
        for f in FIXTURES.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and f.name != ".build-lock"
    )


def _build_fixture_site() -> None:
    import fcntl

    with open(FIXTURES / ".build-lock", "w") as lock:  # several pytest processes may start at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _fixture_site_is_current():
            _install_fixtures()


def _install_fixtures() -> None:
    shutil.rmtree(FIXTURE_SITE, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(FIXTURE_SITE),
            *(str(p) for p in sorted(FIXTURES.iterdir()) if (p / "pyproject.toml").exists()),
        ],
        check=True,
    )
    (FIXTURE_SITE / ".built").touch()


_build_fixture_site()
sys.path.insert(0, str(FIXTURE_SITE))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(FIXTURE_SITE), os.environ.get("PYTHONPATH")) if p)

os.environ["MLTRACK_STRICT_PLUGINS"] = "1"
# mltrack-system samples every run; other tests assert a run's exact metrics (its own tests turn it on)
os.environ["MLTRACK_PLUGINS__SYSTEM__ENABLED"] = "0"
os.environ["MLTRACK_DISABLE_PLUGINS"] = BROKEN_FIXTURES
for _name in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLTRACK_LOAD_PLUGINS", "MLTRACK_DEBUG"):
    os.environ.pop(_name, None)


def reset_mltrack() -> None:
    """Forget cached settings, stores, plugins and leftover runs (``mltrack.testing.reset_state``)."""
    from mltrack.testing import reset_state

    reset_state()


@pytest.fixture(autouse=True)
def _isolated_mltrack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLTRACK_DATA_DIR", str(tmp_path / ".mltrack"))
    reset_mltrack()
    yield
    reset_mltrack()
    _forget_mlflow_globals()


def _forget_mlflow_globals() -> None:
    """A test that calls ``mlflow.set_tracking_uri`` / ``set_experiment`` changes MLflow's module
    globals and the environment (MLflow exports both for subprocesses): every later test's
    ``MlflowClient()`` would read the wrong store."""
    if "mlflow" not in sys.modules:
        return
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    tracking_utils.set_tracking_uri(None)  # type: ignore[arg-type]  # None also resets MLflow's tracer
    fluent._active_experiment_id = None
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite store; copying it skips ~2 s of migrations."""
    import mlflow

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    # the Default experiment's artifact root is ./mlruns of the folder the store is created in:
    # create it in the template's folder, not in the repository
    here = Path.cwd()
    os.chdir(path.parent)
    try:
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(here)
    return path


def fresh_sqlite_uri(template: Path, folder: Path) -> str:
    target = folder / "mlflow.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def sqlite_uri(_sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = fresh_sqlite_uri(_sqlite_template, tmp_path)
    monkeypatch.setenv("MLTRACK_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster for the session (``PostgresServer``); its ``mlflow`` database
    belongs to ``mlflow_server``, other tests create their own with ``create_database``."""
    from mltrack.testing.servers import PostgresServer, postgres_bin_dir

    if postgres_bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: run `make install` (it installs the Debian package)")
    # PostgreSQL runs as the postgres user: its folder must be outside pytest's 0700 tree.
    base = Path(tempfile.mkdtemp(prefix="mltrack-pg-"))
    os.chmod(base, 0o755)
    server = PostgresServer(base / "cluster").start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# Under pytest-xdist the workers share one MariaDB server (a start with MLflow's migrations costs
# 15-25 s): the first worker to need it starts it and writes where it is here, in the run's shared
# temporary folder; the others attach; the controller stops it at the end (pytest_sessionfinish).
MARIADB_SHARED = "mariadb-server.json"


def _start_mariadb() -> MariaDBServer:
    from importlib.util import find_spec

    import mlflow

    from mltrack.testing.servers import MariaDBServer, mariadb_binaries

    if mariadb_binaries() is None:
        pytest.fail("MariaDB is not installed: run `make install` (it installs the Debian package)")
    if find_spec("pymysql") is None:
        pytest.fail("PyMySQL is not installed: run `make install` (requirements-dev.txt lists it)")
    # Run as root, MariaDB runs as the mysql user: its folder must be outside pytest's 0700 tree.
    base = Path(tempfile.mkdtemp(prefix="mltrack-mariadb-"))
    os.chmod(base, 0o755)
    server = MariaDBServer(base / "server").start()
    try:
        # migrated once, here: two processes meeting a fresh database at once would both migrate it
        mlflow.MlflowClient(server.uri).search_experiments()
    except BaseException:
        _remove_mariadb(server)
        raise
    return server


def _remove_mariadb(server: MariaDBServer) -> None:
    server.stop()
    shutil.rmtree(server.base_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A throwaway MariaDB server (``MariaDBServer``) whose ``mlflow`` database MLflow has migrated,
    one per test run: the tests that read a MySQL store directly share it, each with names of its own."""
    import fcntl
    import json

    from mltrack.testing.servers import MariaDBServer

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        server = _start_mariadb()
        try:
            yield server
        finally:
            _remove_mariadb(server)
        return
    shared = tmp_path_factory.getbasetemp().parent / MARIADB_SHARED
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if shared.exists():
            found = json.loads(shared.read_text())
            server = MariaDBServer(Path(found["base_dir"]), port=found["port"])
        else:
            server = _start_mariadb()
            shared.write_text(json.dumps({"base_dir": str(server.base_dir), "port": server.port}))
    yield server


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Only pytest-xdist's controller ("dsession"); its workers' folders are in its basetemp.
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or not session.config.pluginmanager.has_plugin("dsession"):
        return
    shared = factory.getbasetemp() / MARIADB_SHARED
    if shared.exists():
        import json

        from mltrack.testing.servers import MariaDBServer

        found = json.loads(shared.read_text())
        _remove_mariadb(MariaDBServer(Path(found["base_dir"]), port=found["port"]))
        shared.unlink()


@pytest.fixture(scope="session")
def mlflow_server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on PostgreSQL, started once per test session."""
    from mltrack.testing.servers import MlflowServer

    server = MlflowServer(postgres.uri, tmp_path_factory.mktemp("server") / "artifacts")
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("server", marks=pytest.mark.server)])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each tracking test runs against sqlite and against a real mlflow server."""
    if request.param == "sqlite":
        uri = fresh_sqlite_uri(request.getfixturevalue("_sqlite_template"), tmp_path)
    else:
        uri = request.getfixturevalue("mlflow_server")
    monkeypatch.setenv("MLTRACK_TRACKING_URI", uri)
    return uri


def run_python(
    code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this environment (plus ``env``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mltrack`` command."""
    full_env = {**os.environ, **(env or {})}
    mltrack = Path(sys.executable).parent / "mltrack"
    return subprocess.run([str(mltrack), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


_BROWSER_FIXTURES = frozenset({"page", "browser", "context"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make test-isolated` leaves the browser tests out: they exercise the same Python code as
    # the API tests (what an isolated venv checks) and cost minutes of CI a second time.
    for item in items:
        if _BROWSER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _no_running_event_loop_from_playwright(request: pytest.FixtureRequest) -> Iterator[None]:
    """Playwright's sync API leaves its event loop set as this thread's running loop for the rest of
    the session, so a test after the first browser test (any order: pytest-xdist hands out files
    biggest first) that calls ``asyncio.run`` fails with "cannot be called from a running event loop".
    Other tests run without it, as they would in a process of their own; browser tests keep it."""
    loop = asyncio._get_running_loop()
    if loop is None or request.node.get_closest_marker("browser") is not None:
        yield
        return
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)
