"""The ``[tool.mltrack.plugins.system]`` section: defaults, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltrack
from mltrack.errors import ConfigError
from mltrack_system.settings import GROUPS, SystemSettings


def settings_from(tmp_path: Path, section: str) -> SystemSettings:
    (tmp_path / "mltrack.toml").write_text("[plugins.system]\n" + section)
    settings: SystemSettings = mltrack.plugin_settings("system")
    return settings


def test_defaults_sample_every_group_every_ten_seconds() -> None:
    settings = mltrack.plugin_settings("system")
    assert (settings.enabled, settings.interval_s, tuple(settings.groups)) == (True, 10.0, GROUPS)
    assert (settings.disk_path, settings.node_id) == ("/", "auto")


def test_every_field_is_described() -> None:
    assert all(field.description for field in SystemSettings.model_fields.values())


def test_an_interval_under_half_a_second_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from(tmp_path, "interval_s = 0.1\n")
    message = str(raised.value)
    assert "'system'" in message and "interval_s" in message and "0.1" in message and "mltrack.toml" in message


def test_a_misspelled_key_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="intervall_s"):
        settings_from(tmp_path, "intervall_s = 2\n")


def test_an_unknown_group_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="groups") as raised:
        settings_from(tmp_path, 'groups = ["cpu", "gpus"]\n')
    assert "gpus" in str(raised.value)


def test_a_node_id_that_is_not_one_name_segment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node_id"):
        settings_from(tmp_path, 'node_id = "node/0"\n')


def test_groups_and_switches_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__GROUPS", "cpu, gpu")
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__ENABLED", "false")
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__INTERVAL_S", "0.5")
    settings = mltrack.plugin_settings("system")
    assert (settings.groups, settings.enabled, settings.interval_s) == (["cpu", "gpu"], False, 0.5)
