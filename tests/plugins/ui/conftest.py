"""Fixtures for the UI tests: seeded stores (sqlite, PostgreSQL, MariaDB, a real ``mlflow server``),
the UI app served by uvicorn on 127.0.0.1, and headless Chromium through pytest-playwright."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mltrack.testing.servers import MariaDBServer

from .ui_helpers import CHROMIUM, TOKEN, UI, Seeded, SmallStore, seed, seed_small, serve


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """A sqlite store seeded once per session (tests only read it)."""
    folder = tmp_path_factory.mktemp("ui-store")
    made = seed(f"sqlite:///{folder / 'mlflow.db'}", folder)
    # A symlink planted inside the artifact folder that points outside it.
    (Path(made.artifact_uri) / "escape.txt").symlink_to(made.outside_file)
    return made


@pytest.fixture(scope="session")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A real ``mlflow server`` (sqlite backend, proxied artifacts) seeded once per session."""
    from mltrack.testing.servers import MlflowServer

    folder = tmp_path_factory.mktemp("ui-server")
    server = MlflowServer(f"sqlite:///{folder / 'server.db'}", folder / "artifacts")
    server.start()
    try:
        # Every point goes through REST twice (seeding, reading): 20k steps keep it quick.
        yield seed(server.url, folder, long_steps=20_000)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ui(seeded: Seeded) -> Iterator[UI]:
    with serve(tracking_uri=seeded.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def ui_remote(seeded_server: Seeded) -> Iterator[UI]:
    with serve(tracking_uri=seeded_server.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def ui_with_token(seeded: Seeded) -> Iterator[UI]:
    """The app as ``mltrack ui --host 0.0.0.0`` builds it (token required), listening on loopback."""
    with serve(tracking_uri=seeded.uri, host="0.0.0.0", auth_token=TOKEN) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> SmallStore:
    """A small sqlite store (for tests that need a few rows, not the seeded 100k-step metric)."""
    return seed_small(f"sqlite:///{tmp_path_factory.mktemp('ui-small') / 'mlflow.db'}")


@pytest.fixture(scope="session")
def ui_sqlite(sqlite_store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=sqlite_store.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def postgres_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmallStore]:
    """A PostgreSQL database the UI reads directly through SQL (no mlflow server in between)."""
    from mltrack.testing.servers import PostgresServer, postgres_bin_dir

    if postgres_bin_dir() is None:
        pytest.fail("PostgreSQL is not installed: run `make install` (it installs the Debian package)")
    # PostgreSQL runs as the postgres user: its folder must be outside pytest's 0700 tree.
    base = Path(tempfile.mkdtemp(prefix="mltrack-ui-pg-"))
    os.chmod(base, 0o755)
    postgres = PostgresServer(base / "cluster").start()
    try:
        yield seed_small(postgres.uri)
    finally:
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def ui_postgres(postgres_store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=postgres_store.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def mariadb_store(mariadb: MariaDBServer) -> SmallStore:
    """The session's MariaDB database, read by the UI directly through SQL (MySQL's dialect)."""
    return seed_small(mariadb.uri)


@pytest.fixture(scope="session")
def ui_mariadb(mariadb_store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=mariadb_store.uri) as server:
        yield UI(server.url)


@pytest.fixture(scope="session")
def server_store(mlflow_server: str) -> SmallStore:
    """The session's real ``mlflow server`` on PostgreSQL, with a small experiment of our own."""
    return seed_small(mlflow_server)


@pytest.fixture(scope="session")
def ui_server(server_store: SmallStore) -> Iterator[UI]:
    with serve(tracking_uri=server_store.uri) as server:
        yield UI(server.url)


# -- the browser ----------------------------------------------------------------------------------

if find_spec("pytest_playwright") is None:

    @pytest.fixture
    def page() -> Any:
        pytest.skip("pytest-playwright is not installed (make install adds it)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make install does)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    }


@pytest.fixture(scope="session")
def frontend_built() -> None:
    from mltrack_ui.app import static_dir

    if static_dir() is None:
        pytest.fail("the front end is not built: run `make ui-build` (make install does it)")
