"""The ``mltrack`` command line: version, help, config, experiments and runs, and error output.

Every command runs as the installed ``mltrack`` executable in a subprocess; stores are
real sqlite files populated through the public API in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import pytest
from conftest import fresh_sqlite_uri, run_cli, run_python

import mltrack
from mltrack.config.secrets import mask_secrets

if TYPE_CHECKING:
    from mltrack.testing.servers import PostgresServer

CORE_COMMANDS = {
    "config",
    "experiments",
    "plugins",
    "runs",
    "artifacts",
    "sync",
    "gc",
    "models",
    "deploy",
    "deployments",
    "serve",
}


def cli_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run_cli(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def help_commands(help_text: str) -> set[str]:
    """The command names listed under ``Commands:`` in click's help."""
    section = help_text.split("Commands:", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()}


def settings_rows(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    return {row["setting"]: row for row in cli_json("config", "show", env=env)["settings"]}


@dataclass
class CliStore:
    """The store a CLI test reads: ``private`` when the test has it to itself; the session's
    ``mlflow server`` is shared, so there names get a suffix and listings are narrowed to ours."""

    uri: str
    private: bool
    suffix: str = ""

    def name(self, base: str) -> str:
        return base if self.private else f"{base}-{self.suffix}"


@pytest.fixture(scope="session")
def _postgres_template(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with MLflow's tables; each test gets a copy (CREATE DATABASE ... TEMPLATE)."""
    uri = postgres.create_database("cli_template")
    # migrated in a process of its own, so no connection is left open (a template must have none)
    done = run_python(
        f"import mlflow; mlflow.MlflowClient({uri!r}).search_experiments()", cwd=tmp_path_factory.mktemp("pg-cli")
    )
    assert done.returncode == 0, done.stderr
    return "cli_template"


STORES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.server),
    pytest.param("server", marks=pytest.mark.server),
]


@pytest.fixture(params=STORES)
def cli_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliStore:
    """The CLI's reads on each store a team uses: sqlite, PostgreSQL and MySQL (MariaDB) directly,
    and an mlflow server."""
    if request.param == "sqlite":
        store = CliStore(fresh_sqlite_uri(request.getfixturevalue("_sqlite_template"), tmp_path), private=True)
    elif request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")
        name = f"cli_{uuid4().hex[:12]}"
        uri = postgres.create_database(name, template=request.getfixturevalue("_postgres_template"))
        store = CliStore(uri, private=True)
    elif request.param == "mysql":
        # one database for the session, shared like the server: MLflow's migrations take 10-20 s there
        store = CliStore(request.getfixturevalue("mariadb").uri, private=False, suffix=uuid4().hex[:8])
    else:
        store = CliStore(request.getfixturevalue("mlflow_server"), private=False, suffix=uuid4().hex[:8])
    monkeypatch.setenv("MLTRACK_TRACKING_URI", store.uri)
    return store


# Rendering and hints are the same whatever the store: those tests run on sqlite only.
SQLITE_ONLY = pytest.mark.parametrize("cli_store", ["sqlite"], indirect=True)
# MySQL (a MariaDB server) for the reads a team's MySQL store must get right: runs list/show with
# a NaN metric (MySQL's DOUBLE has no NaN: MLflow stores 0 and is_nan) and models list. Each CLI
# call costs seconds, so the other tests stay on the three stores above.
WITH_MYSQL = pytest.mark.parametrize(
    "cli_store", [*STORES, pytest.param("mysql", marks=[pytest.mark.server, pytest.mark.mysql])], indirect=True
)


@dataclass
class Populated:
    store: CliStore
    runs: dict[str, str]  # run name -> run id
    experiment_ids: set[str]

    def exp(self, base: str) -> str:
        return self.store.name(base)

    def ours(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of this test's experiments (all of them on a store of its own)."""
        return rows if self.store.private else [r for r in rows if r["experiment_id"] in self.experiment_ids]


@pytest.fixture
def populated_store(cli_store: CliStore) -> Populated:
    """Experiments ``exp-a`` (runs ``good`` loss 0.2, ``bad`` loss 0.9) and ``exp-b`` (``other``
    loss 0.1)."""
    run_ids = {}
    experiment_ids = set()
    for experiment, runs in {"exp-a": {"good": 0.2, "bad": 0.9}, "exp-b": {"other": 0.1}}.items():
        experiment_ids.add(mltrack.set_experiment(cli_store.name(experiment)).experiment_id)
        for name, loss in runs.items():
            with mltrack.start_run(run_name=name) as run:
                mltrack.log_param("lr", 0.01)
                mltrack.log_metric("loss", loss)
            run_ids[name] = run.run_id
    return Populated(cli_store, run_ids, experiment_ids)


def run_names(rows: list[dict[str, Any]]) -> set[str]:
    return {row["name"] for row in rows}


# -- version and help ----------------------------------------------------------------------------


def test_version_option_prints_the_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mltrack {mltrack.__version__}\n"


def test_python_dash_m_mltrack_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mltrack", "--version"], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mltrack {mltrack.__version__}\n"


def test_help_lists_the_core_commands_and_plugin_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    # Besides the fixture plugin, in-repo plugins installed here may add theirs (mltrack-ui: `ui`).
    listing = json.loads(run_cli("plugins", "--json").stdout)
    plugin_commands = {c for p in listing for c in p["contributes"].get("commands", [])}
    assert "fixture-hello" in plugin_commands
    assert help_commands(result.stdout) == CORE_COMMANDS | plugin_commands


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr


# -- config show ------------------------------------------------------------------------------------------


def test_config_show_json_lists_every_setting() -> None:
    from mltrack.config.settings import MLTrackSettings

    assert list(settings_rows()) == list(MLTrackSettings.model_fields)


def test_config_show_json_names_the_source_of_each_value() -> None:
    Path("mltrack.toml").write_text('experiment = "from-toml"\n')
    rows = settings_rows(env={"MLTRACK_FLUSH_INTERVAL_MS": "250"})
    assert rows["flush_interval_ms"] == {
        "setting": "flush_interval_ms",
        "value": 250,
        "source": "environment variable MLTRACK_FLUSH_INTERVAL_MS",
    }
    assert rows["experiment"]["value"] == "from-toml"
    assert rows["experiment"]["source"] == str(Path.cwd() / "mltrack.toml")
    assert rows["write_retries"]["source"] == "default"


def test_config_show_json_names_every_source_of_the_plugin_sections() -> None:
    assert settings_rows()["plugins"]["source"] == "environment variable MLTRACK_PLUGINS__SYSTEM__ENABLED"
    Path("mltrack.toml").write_text('[plugins.fixture]\ngreeting = "hi"\n')
    rows = settings_rows(env={"MLTRACK_PLUGINS__UI__PORT": "5051"})
    assert rows["plugins"]["source"] == (
        "environment variable MLTRACK_PLUGINS__SYSTEM__ENABLED; environment variable MLTRACK_PLUGINS__UI__PORT; "
        f"{Path.cwd() / 'mltrack.toml'}"
    )


def test_config_show_json_shows_the_default_tracking_uri_in_force() -> None:
    rows = settings_rows()
    assert rows["tracking_uri"]["value"] == f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    assert rows["tracking_uri"]["source"] == "default"


def test_config_show_json_masks_the_password_in_a_tracking_uri() -> None:
    result = run_cli(
        "config", "show", "--json", env={"MLTRACK_TRACKING_URI": "https://alice:s3cret@mlflow.example.com:5000"}
    )
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout
    rows = {row["setting"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["tracking_uri"]["value"] == "https://alice:********@mlflow.example.com:5000"


def test_config_show_json_masks_secrets_in_plugin_sections_and_keeps_their_shape() -> None:
    Path("mltrack.toml").write_text(
        '[plugins.fixture]\ngreeting = "https://bob:hunter2@hello.example"\napi_token = "tok-123"\n'
    )
    result = run_cli("config", "show", "--json")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "tok-123" not in result.stdout
    rows = {row["setting"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["plugins"]["value"]["fixture"] == {
        "greeting": "https://bob:********@hello.example",
        "api_token": "********",
    }


def test_config_show_with_a_bad_value_prints_the_error_naming_its_source() -> None:
    result = run_cli("config", "show", env={"MLTRACK_WRITE_RETRIES": "many"})
    assert result.returncode == 1
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: setting 'write_retries' = 'many' (from environment variable MLTRACK_WRITE_RETRIES)")
    assert hint == "Hint: fix or unset the environment variable MLTRACK_WRITE_RETRIES"


# -- experiments and runs ----------------------------------------------------------------------------------


def test_experiments_list_json_lists_the_stores_experiments(populated_store: Populated) -> None:
    experiments = cli_json("experiments", "list")
    names = {e["name"] for e in experiments}
    if populated_store.store.private:
        assert names == {"Default", "exp-a", "exp-b"}
    else:
        assert {"Default", populated_store.exp("exp-a"), populated_store.exp("exp-b")} <= names
    assert all(e["lifecycle_stage"] == "active" for e in experiments)


def test_runs_list_json_lists_runs_of_every_experiment(populated_store: Populated) -> None:
    rows = populated_store.ours(cli_json("runs", "list"))
    assert {row["name"]: row["run_id"] for row in rows} == populated_store.runs
    assert all(row["status"] == "FINISHED" for row in rows)


@SQLITE_ONLY
def test_runs_list_experiment_option_selects_that_experiment(populated_store: Populated) -> None:
    assert run_names(cli_json("runs", "list", "--experiment", populated_store.exp("exp-a"))) == {"good", "bad"}


def test_runs_list_filter_applies_an_mlflow_filter(populated_store: Populated) -> None:
    rows = populated_store.ours(cli_json("runs", "list", "--filter", "metrics.loss < 0.5"))
    assert run_names(rows) == {"good", "other"}


def test_runs_list_combines_experiment_and_filter(populated_store: Populated) -> None:
    rows = cli_json("runs", "list", "--experiment", populated_store.exp("exp-a"), "--filter", "metrics.loss < 0.5")
    assert [(row["name"], row["metrics"]) for row in rows] == [("good", {"loss": 0.2})]


def test_runs_list_orders_by_a_metric(populated_store: Populated) -> None:
    experiments = ("--experiment", populated_store.exp("exp-a"), "--experiment", populated_store.exp("exp-b"))
    rows = cli_json("runs", "list", *experiments, "--order-by", "metrics.loss DESC", "--limit", "2")
    assert [row["name"] for row in rows] == ["bad", "good"]


@SQLITE_ONLY
def test_runs_list_table_shows_each_run(populated_store: Populated) -> None:
    result = run_cli("runs", "list", "--experiment", populated_store.exp("exp-b"), env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert populated_store.runs["other"][:8] in result.stdout  # the short id, as the UI shows
    assert "loss=0.1" in result.stdout


def test_runs_show_json_shows_params_metrics_and_tags(populated_store: Populated) -> None:
    shown = cli_json("runs", "show", populated_store.runs["good"])
    assert shown["run_id"] == populated_store.runs["good"]
    assert shown["name"] == "good"
    assert shown["status"] == "FINISHED"
    assert shown["params"] == {"lr": "0.01"}
    assert shown["metrics"] == {"loss": 0.2}
    assert shown["tags"]["fixture.seen"] == "yes"


def test_runs_show_unknown_run_prints_one_error_and_a_hint_without_traceback(cli_store: CliStore) -> None:
    result = run_cli("runs", "show", "doesnotexist")
    assert result.returncode == 1
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error == f"Error: run 'doesnotexist' does not exist in {mask_secrets(cli_store.uri)}"
    assert hint.startswith("Hint: ")


def test_debug_prints_the_traceback_before_the_error(sqlite_uri: str) -> None:
    result = run_cli("runs", "show", "doesnotexist", env={"MLTRACK_DEBUG": "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "RunNotFoundError" in result.stderr
    assert result.stderr.splitlines()[-2] == f"Error: run 'doesnotexist' does not exist in {sqlite_uri}"


@SQLITE_ONLY
def test_runs_list_unknown_experiment_error_lists_the_existing_ones(populated_store: Populated) -> None:
    result = run_cli("runs", "list", "--experiment", "nope")
    assert result.returncode == 1
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: experiment 'nope' does not exist")
    assert hint.startswith("Hint: existing experiments: ")
    for name in ("'Default'", "'exp-a'", "'exp-b'"):
        assert name in hint


# -- models --------------------------------------------------------------------------------------


@pytest.fixture
def registered(cli_store: CliStore) -> str:
    """Model ``scorer`` with versions 1 and 2 (tagged), from one run; its name on this store."""
    import mlflow

    client = mlflow.MlflowClient(cli_store.uri)
    name = cli_store.name("scorer")
    run = client.create_run(client.create_experiment(cli_store.name("models-cli")), run_name="fit")
    client.create_registered_model(name, description="scores churn")
    for _ in range(2):
        client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_model_version_tag(name, "2", "stage", "candidate")
    return name


@WITH_MYSQL
def test_models_list_shows_the_latest_version_and_aliases(registered: str) -> None:
    assert run_cli("models", "alias", registered, "champion", "1").returncode == 0
    [row] = [m for m in cli_json("models", "list") if m["name"] == registered]
    assert row == {
        "name": registered,
        "latest_version": 2,
        "versions": 2,
        "aliases": {"champion": 1},
        "description": "scores churn",
    }


def test_models_show_lists_each_version_with_its_run_tags_and_aliases(registered: str) -> None:
    assert run_cli("models", "alias", registered, "@challenger", "2").returncode == 0
    shown = cli_json("models", "show", registered)
    assert [(v["version"], v["aliases"], v["tags"]) for v in shown["versions"]] == [
        (1, [], {}),
        (2, ["challenger"], {"stage": "candidate"}),
    ]
    assert len({v["run_id"] for v in shown["versions"]}) == 1


# -- how main() turns outcomes into exit codes ---------------------------------------------------------------


def run_extra_command(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``mltrack extra`` where ``extra`` is a command whose body is ``body``."""
    return run_python(
        "import click\n"
        "from mltrack.cli import cli, main\n"
        "@cli.command('extra')\n"
        "@click.pass_context\n"
        "def extra(ctx):\n"
        f"    {body}\n"
        "main(['extra'])\n"
    )


def test_the_exit_code_a_command_chooses_is_the_process_exit_code() -> None:
    assert run_extra_command("ctx.exit(3)").returncode == 3


def test_an_unexpected_exception_is_one_error_line_with_a_debug_hint() -> None:
    result = run_extra_command("raise ValueError('went wrong\\nsecond line')")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: ValueError: went wrong",
        "Hint: set MLTRACK_DEBUG=1 to see the traceback",
    ]


# -- strict JSON: NaN and infinity are null in every --json output ---------------------------------------


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON: ``jq`` and browsers refuse the bare NaN/Infinity Python writes."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def nan_run(cli_store: CliStore) -> str:
    """A run (logged with plain MLflow, which accepts NaN) whose latest loss is NaN, in
    experiment ``nan-exp``."""
    import mlflow

    client = mlflow.MlflowClient(cli_store.uri)
    run = client.create_run(client.create_experiment(cli_store.name("nan-exp")), run_name="diverged")
    client.log_metric(run.info.run_id, "loss", 0.5, step=0)
    client.log_metric(run.info.run_id, "loss", float("nan"), step=1)
    client.log_metric(run.info.run_id, "accuracy", 0.25, step=1)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@WITH_MYSQL
def test_runs_list_and_show_json_print_a_nan_metric_as_null(nan_run: str, cli_store: CliStore) -> None:
    listing = ("runs", "list", "--experiment", cli_store.name("nan-exp"), "--json")
    for args in (listing, ("runs", "show", nan_run, "--json")):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        shown = strict_json(result.stdout)
        row = shown[0] if isinstance(shown, list) else shown
        assert row["metrics"] == {"loss": None, "accuracy": 0.25}, args


@SQLITE_ONLY
def test_the_runs_table_still_shows_nan(nan_run: str, cli_store: CliStore) -> None:
    result = run_cli("runs", "list", "--experiment", cli_store.name("nan-exp"), env={"COLUMNS": "200"})
    assert result.returncode == 0 and "loss=nan" in result.stdout


# -- secrets are masked by key name and by value -----------------------------------------------------------


def save_deployment_record(store: CliStore | None = None, **changes: Any) -> str:
    """A model "scorer" v1 with a `local` deployment record (its server long gone); returns the
    model's name on ``store`` (default: the test's sqlite store)."""
    from dataclasses import replace

    import mlflow

    from mltrack.deployment.deployments import Deployment, save_record
    from mltrack.deployment.providers import DeploymentState

    client = mlflow.MlflowClient(store.uri if store else None)
    name = store.name("scorer") if store else "scorer"
    run = client.create_run(client.create_experiment(store.name("deploy-cli") if store else "deploy-cli"))
    client.create_registered_model(name)
    client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    record = Deployment(
        name=name,
        provider="local",
        model_name=name,
        model_version=1,
        alias=None,
        config={"port": 0},
        state=DeploymentState.READY,
        url="http://127.0.0.1:9",
        message="serving",
        details={"pid": 2**22 + 12345, "host": "elsewhere", "started_at": 0},
    )
    save_record(replace(record, **changes))
    return name


def test_config_show_masks_secret_query_parameters_of_the_tracking_uri() -> None:
    uri = "postgresql://db.example/mlflow?user=app&password=pg-s3cret&sslmode=require"
    result = run_cli("config", "show", "--json", env={"MLTRACK_TRACKING_URI": uri})
    assert result.returncode == 0, result.stderr
    assert "pg-s3cret" not in result.stdout
    rows = {row["setting"]: row for row in strict_json(result.stdout)["settings"]}
    assert rows["tracking_uri"]["value"] == "postgresql://db.example/mlflow?user=app&password=********&sslmode=require"


def test_config_show_masks_urls_inside_plugin_sections_whatever_their_key() -> None:
    Path("mltrack.toml").write_text(
        '[plugins.fixture.env]\nDATABASE_URL = "postgresql://app:hunter2@db/x"\nCACHE = "redis://cache:6379/0"\n'
    )
    result = run_cli("config", "show")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "redis://cache:6379/0" in result.stdout


def test_deployments_list_masks_passwords_in_env_urls_and_messages(cli_store: CliStore) -> None:
    name = save_deployment_record(
        cli_store,
        config={"port": 0, "env": {"DATABASE_URL": "postgresql://app:db-pa55@db/x", "API_KEY": "k-123"}},
        url="http://127.0.0.1:9/?token=t0k-456",
        message="cannot reach postgresql://app:db-pa55@db/x",
        details={"p99_ms": float("nan"), "pid": 1},
    )
    only_ours = () if cli_store.private else ("--model", name)
    listed = run_cli("deployments", "list", "--cached", *only_ours, "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = strict_json(listed.stdout)
    assert (row["id"], row["model_name"], row["model_version"]) == (f"local/{name}", name, 1)
    assert row["config"]["env"] == {"DATABASE_URL": "postgresql://app:********@db/x", "API_KEY": "********"}
    assert row["url"] == "http://127.0.0.1:9/?token=********"
    assert row["message"] == "cannot reach postgresql://app:********@db/x"
    assert row["details"]["p99_ms"] is None
    table = run_cli("deployments", "list", "--cached", *only_ours, env={"COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    for secret in ("db-pa55", "k-123", "t0k-456"):
        assert secret not in listed.stdout and secret not in table.stdout


def test_a_deployment_record_printed_by_status_is_masked(sqlite_uri: str) -> None:
    save_deployment_record(url="http://app:st4tus-pw@127.0.0.1:9/", message="password=st4tus-pw")
    for args in (("--json",), ()):
        result = run_cli("deployments", "status", "local/scorer", *args, env={"COLUMNS": "250"})
        assert "local/scorer" in result.stdout and "st4tus-pw" not in result.stdout + result.stderr


def test_deploy_plan_masks_a_password_in_the_config(sqlite_uri: str) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("plan-cli"))
    client.create_registered_model("planned")
    client.create_model_version("planned", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    pair = "env.DATABASE_URL=postgresql://app:pl4n-pw@db/x"
    for args in (("--json",), ()):
        result = run_cli("deploy", "planned", "--plan", "--config", pair, *args)
        assert result.returncode == 0, result.stderr
        assert "pl4n-pw" not in result.stdout
    plan = strict_json(run_cli("deploy", "planned", "--plan", "--config", pair, "--json").stdout)
    assert plan["config"]["env"] == {"DATABASE_URL": "postgresql://app:********@db/x"}


def test_an_error_quoting_a_uri_prints_it_without_the_password() -> None:
    result = run_extra_command("raise ValueError('could not connect to postgresql://app:err-pw@db:5432/x')")
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0] == "Error: ValueError: could not connect to postgresql://app:********@db:5432/x"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("postgresql://app:pw@db/x", "postgresql://app:********@db/x"),
        ("DATABASE_URL=postgresql://app:p@ss:w@db:5432/x", "DATABASE_URL=postgresql://app:********@db:5432/x"),
        ("redis://:pw@cache:6379/0", "redis://:********@cache:6379/0"),
        ("mysql://h/db?user=a&password=b&x=1", "mysql://h/db?user=a&password=********&x=1"),
        (
            "https://s3/x?X-Amz-Signature=abc&X-Amz-Credential=AK%2F1&v=2",
            "https://s3/x?X-Amz-Signature=********&X-Amz-Credential=********&v=2",
        ),
        ("host=db user=app password='a b' dbname=x", "host=db user=app password=******** dbname=x"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ********"),
        ("max_tokens=100 sort=asc", "max_tokens=100 sort=asc"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("http://127.0.0.1:5000/path", "http://127.0.0.1:5000/path"),
        (
            {"apiKey": "k", "X-Api-Key": "k", "key_id": "AKIA1", "key": "loss", "token": None, "n": 1.5},
            {"apiKey": "********", "X-Api-Key": "********", "key_id": "AKIA1", "key": "loss", "token": None, "n": 1.5},
        ),
        ({"env": ("a", "password=x")}, {"env": ("a", "password=********")}),
    ],
)
def test_mask_secrets_masks_by_key_name_and_by_value(value: Any, shown: Any) -> None:
    from pydantic import SecretStr

    from mltrack.config.secrets import mask_secrets

    assert mask_secrets(value) == shown
    assert mask_secrets({"auth_token": SecretStr("x"), "nested": [SecretStr("y")]}) == {
        "auth_token": "********",
        "nested": ["********"],
    }


def test_a_missing_plugin_command_says_which_plugin_to_install() -> None:
    result = run_cli("ui", env={"MLTRACK_DISABLE_PLUGINS": "ui,broken-import,misspelled-hook"})
    assert result.returncode == 2
    assert "No such command 'ui': it comes with the mltrack-ui plugin" in result.stderr
    assert '"mltrack[ui]==' in result.stderr and "--find-links" in result.stderr
