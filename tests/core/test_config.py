"""Configuration: sources, precedence, errors that name their source, plugin sections (DESIGN §6).

Precedence, highest first: ``mltrack.configure(...)`` > ``MLTRACK_*`` environment >
``.env`` in the working directory > ``mltrack.toml`` > ``[tool.mltrack]`` in pyproject.toml >
defaults. Every test runs in its own empty working directory with fresh settings.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import run_cli

import mltrack
from mltrack.config.settings import MLTrackSettings, describe_source, reset_settings

SOURCES = ["argument", "environment", ".env", "mltrack.toml", "pyproject.toml"]
ADJACENT_SOURCES = list(itertools.pairwise(SOURCES))


def set_flush_interval(source: str, value: int | str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set ``flush_interval_ms`` to ``value`` through ``source``."""
    if source == "argument":
        mltrack.configure(flush_interval_ms=value)
    elif source == "environment":
        monkeypatch.setenv("MLTRACK_FLUSH_INTERVAL_MS", str(value))
    elif source == ".env":
        Path(".env").write_text(f"MLTRACK_FLUSH_INTERVAL_MS={value}\n")
    elif source == "mltrack.toml":
        Path("mltrack.toml").write_text(f"flush_interval_ms = {json.dumps(value)}\n")
    elif source == "pyproject.toml":
        Path("pyproject.toml").write_text(f"[tool.mltrack]\nflush_interval_ms = {json.dumps(value)}\n")
    else:
        raise AssertionError(source)


def write_pyproject(body: str) -> Path:
    path = Path.cwd() / "pyproject.toml"
    path.write_text(f'[project]\nname = "demo"\n\n{body}')
    return path


# -- precedence ----------------------------------------------------------------------------------


def test_defaults_apply_when_nothing_is_configured() -> None:
    settings = mltrack.get_settings()
    assert settings.flush_interval_ms == 100
    assert settings.tracking_uri is None
    assert settings.experiment is None


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_overrides_the_default(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_flush_interval(source, 250, monkeypatch)
    assert mltrack.get_settings().flush_interval_ms == 250


@pytest.mark.parametrize(("higher", "lower"), ADJACENT_SOURCES, ids=[f"{h}>{lo}" for h, lo in ADJACENT_SOURCES])
def test_higher_source_beats_the_next_lower_one(higher: str, lower: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_flush_interval(lower, 300, monkeypatch)
    set_flush_interval(higher, 200, monkeypatch)
    assert mltrack.get_settings().flush_interval_ms == 200


@pytest.mark.parametrize(
    ("source", "described"),
    [
        ("environment", "environment variable MLTRACK_FLUSH_INTERVAL_MS"),
        (".env", ".env file {cwd}/.env"),
        ("mltrack.toml", "{cwd}/mltrack.toml"),
        ("pyproject.toml", "{cwd}/pyproject.toml [tool.mltrack]"),
    ],
)
def test_the_source_of_a_value_is_described(source: str, described: str, monkeypatch: pytest.MonkeyPatch) -> None:
    set_flush_interval(source, 250, monkeypatch)
    assert describe_source(("flush_interval_ms",)) == described.format(cwd=Path.cwd())


def test_reset_settings_drops_explicit_arguments() -> None:
    mltrack.configure(flush_interval_ms=250)
    reset_settings()
    assert mltrack.get_settings().flush_interval_ms == 100


# -- tracking URI -----------------------------------------------------------------------------------


def test_default_tracking_uri_is_a_sqlite_file_in_the_working_directory() -> None:
    assert mltrack.get_settings().resolved_tracking_uri() == f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def test_mlflow_tracking_uri_beats_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert mltrack.get_settings().resolved_tracking_uri() == "http://mlflow.example:5000"
    assert describe_source(("tracking_uri",)) == "environment variable MLFLOW_TRACKING_URI"


def test_mltrack_tracking_uri_beats_mlflow_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.setenv("MLTRACK_TRACKING_URI", "http://mltrack.example:5000")
    assert mltrack.get_settings().resolved_tracking_uri() == "http://mltrack.example:5000"
    assert describe_source(("tracking_uri",)) == "environment variable MLTRACK_TRACKING_URI"


def test_tracking_uri_from_mltrack_toml_beats_mlflow_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    Path("mltrack.toml").write_text('tracking_uri = "http://from-toml.example:5000"\n')
    assert mltrack.get_settings().resolved_tracking_uri() == "http://from-toml.example:5000"
    assert describe_source(("tracking_uri",)) == f"{Path.cwd() / 'mltrack.toml'}"


# -- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "named_source"),
    [
        ("environment", "environment variable MLTRACK_FLUSH_INTERVAL_MS"),
        (".env", "{cwd}/.env"),
        ("mltrack.toml", "{cwd}/mltrack.toml"),
        ("pyproject.toml", "{cwd}/pyproject.toml"),
    ],
)
def test_bad_value_error_names_the_field_the_value_and_the_source(
    source: str, named_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_flush_interval(source, "fast", monkeypatch)
    with pytest.raises(mltrack.ConfigError) as caught:
        mltrack.get_settings()
    message = caught.value.message
    assert "'flush_interval_ms'" in message
    assert "'fast'" in message
    assert named_source.format(cwd=Path.cwd()) in message
    assert caught.value.hint


def test_bad_value_out_of_range_is_rejected_naming_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_FLUSH_INTERVAL_MS", "0")
    with pytest.raises(mltrack.ConfigError, match=r"'flush_interval_ms' = '0' .*greater than or equal to 1"):
        mltrack.get_settings()


def test_bad_argument_error_names_the_argument_as_source() -> None:
    with pytest.raises(mltrack.ConfigError, match=r"'flush_interval_ms' = 'fast' \(from argument\)"):
        mltrack.configure(flush_interval_ms="fast")


def test_rejected_configure_keeps_the_settings_in_force() -> None:
    mltrack.configure(flush_interval_ms=150)
    with pytest.raises(mltrack.ConfigError):
        mltrack.configure(flush_interval_ms="fast")
    assert mltrack.get_settings().flush_interval_ms == 150


def test_unknown_setting_in_configure_is_an_error_listing_the_known_settings() -> None:
    with pytest.raises(mltrack.ConfigError, match=r"unknown setting.*flush_interval") as caught:
        mltrack.configure(flush_interval=5)
    assert caught.value.hint is not None
    for name in MLTrackSettings.model_fields:
        assert name in caught.value.hint


# -- list settings ---------------------------------------------------------------------------------------


def test_disable_plugins_is_parsed_from_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_DISABLE_PLUGINS", " alpha, beta ,,gamma")
    assert mltrack.get_settings().disable_plugins == ["alpha", "beta", "gamma"]


def test_unset_load_plugins_means_no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLTRACK_LOAD_PLUGINS", raising=False)
    assert mltrack.get_settings().load_plugins is None


def test_empty_load_plugins_means_an_empty_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_LOAD_PLUGINS", "")
    assert mltrack.get_settings().load_plugins == []


# -- plugin sections -----------------------------------------------------------------------------------------


def test_plugin_section_defaults_apply_without_a_section() -> None:
    settings = mltrack.plugin_settings("fixture")
    assert (settings.greeting, settings.repeat) == ("hello", 1)


def test_plugin_section_is_read_from_pyproject() -> None:
    write_pyproject('[tool.mltrack.plugins.fixture]\ngreeting = "hi"\n')
    assert mltrack.plugin_settings("fixture").greeting == "hi"


def test_plugin_section_is_read_from_mltrack_toml() -> None:
    Path("mltrack.toml").write_text('[plugins.fixture]\ngreeting = "hey"\n')
    assert mltrack.plugin_settings("fixture").greeting == "hey"


def test_plugin_setting_from_environment_overrides_the_file_and_keeps_its_other_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_pyproject('[tool.mltrack.plugins.fixture]\ngreeting = "hi"\nrepeat = 3\n')
    monkeypatch.setenv("MLTRACK_PLUGINS__FIXTURE__GREETING", "howdy")
    settings = mltrack.plugin_settings("fixture")
    assert (settings.greeting, settings.repeat) == ("howdy", 3)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [("repeat = 99", "'repeat'", "99"), ("colour = 'red'", "'colour'", "'red'")],
    ids=["out-of-range", "unknown-field"],
)
def test_bad_plugin_setting_names_the_plugin_field_value_and_file(line: str, field: str, value: str) -> None:
    pyproject = write_pyproject(f"[tool.mltrack.plugins.fixture]\n{line}\n")
    with pytest.raises(mltrack.ConfigError) as caught:
        mltrack.plugin_settings("fixture")
    message = caught.value.message
    assert message.startswith(f"plugin 'fixture' setting {field} = {value} ")
    assert str(pyproject) in message


def test_bad_plugin_setting_from_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__FIXTURE__REPEAT", "99")
    with pytest.raises(mltrack.ConfigError) as caught:
        mltrack.plugin_settings("fixture")
    assert caught.value.message.startswith(
        "plugin 'fixture' setting 'repeat' = '99' (from environment variable MLTRACK_PLUGINS__FIXTURE__REPEAT)"
    )


def test_asking_for_settings_of_a_plugin_that_registers_none_is_an_error() -> None:
    with pytest.raises(mltrack.ConfigError, match="plugin 'nobody' registers no settings"):
        mltrack.plugin_settings("nobody")


# -- end to end through a plugin command -----------------------------------------------------------------------


def test_plugin_command_uses_the_configured_greeting() -> None:
    write_pyproject('[tool.mltrack.plugins.fixture]\ngreeting = "hi"\n')
    result = run_cli("fixture-hello", "Ada")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi, Ada!\n"


def test_plugin_command_uses_the_greeting_from_the_environment() -> None:
    write_pyproject('[tool.mltrack.plugins.fixture]\ngreeting = "hi"\n')
    result = run_cli("fixture-hello", "Ada", env={"MLTRACK_PLUGINS__FIXTURE__GREETING": "howdy"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "howdy, Ada!\n"


def test_plugin_command_with_a_bad_plugin_setting_prints_one_error_naming_it() -> None:
    pyproject = write_pyproject("[tool.mltrack.plugins.fixture]\nrepeat = 99\n")
    result = run_cli("fixture-hello")
    assert result.returncode == 1
    assert result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: plugin 'fixture' setting 'repeat' = 99 ")
    assert str(pyproject) in error
    assert hint == f"Hint: fix the value in {pyproject} [tool.mltrack]"
