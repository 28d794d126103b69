"""The configuration the SageMaker provider accepts, and its page in docs/ that is generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mltrack_sagemaker.config import SageMakerDeploymentConfig, SageMakerSettings, ServerlessConfig
from mltrack_sagemaker.docs import BEGIN, END, config_table, config_tables, generated_part

PAGE = Path(__file__).resolve().parents[3] / "docs" / "providers" / "sagemaker.md"


def test_the_docs_page_holds_the_tables_generated_from_the_models() -> None:
    assert generated_part(PAGE.read_text()) == config_tables(), (
        "docs/providers/sagemaker.md is out of date: paste the output of `python -m mltrack_sagemaker.docs`"
    )


@pytest.mark.parametrize("model", [SageMakerDeploymentConfig, ServerlessConfig, SageMakerSettings])
def test_every_field_is_in_the_table_with_a_description(model: type[BaseModel]) -> None:
    table = config_table(model)
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description for the docs"
        assert f"| `{name}` |" in table


def test_the_generated_part_is_found_between_its_markers() -> None:
    assert generated_part(f"before\n{BEGIN}\nx\n{END}\nafter") == f"{BEGIN}\nx\n{END}"
    assert generated_part("no markers") == ""


def test_the_spec_config_is_valid_and_defaults_are_sagemakers() -> None:
    config = SageMakerDeploymentConfig.model_validate({"instance_type": "ml.m5.large"})
    assert (config.instance_count, config.variant_name, config.serverless, config.wait_timeout) == (
        1,
        "AllTraffic",
        None,
        1800.0,
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"serverless": {}, "instance_type": "ml.c5.xlarge"}, "has no instances: drop instance_type"),
        ({"tags": {"mltrack:deployment": "x"}}, "not starting with 'aws:' or 'mltrack:'"),
        ({"tags": {f"k{i}": "v" for i in range(47)}}, "at most 46"),
        ({"serverless": {"max_concurrency": 2, "provisioned_concurrency": 5}}, "exceeds max_concurrency (2)"),
        ({"instance_types": "ml.m5.large"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_deployment_configs_say_why(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SageMakerDeploymentConfig.model_validate(config)


def test_settings_keep_secrets_secret_and_want_key_pairs() -> None:
    settings = SageMakerSettings.model_validate(
        {"aws_access_key_id": "AKIA123", "aws_secret_access_key": "s3cr3t", "s3_prefix": "/models/"}
    )
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in settings.model_dump_json()
    assert settings.s3_prefix == "models"
    with pytest.raises(ValidationError, match="go together"):
        SageMakerSettings.model_validate({"aws_access_key_id": "AKIA123"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SageMakerSettings.model_validate({"role": "x"})


def test_settings_come_from_the_plugins_config_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mltrack
    from mltrack.extend import plugin_settings

    (tmp_path / "pyproject.toml").write_text(
        '[tool.mltrack.plugins.sagemaker]\nregion = "eu-west-1"\nbucket = "team-models"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLTRACK_PLUGINS__SAGEMAKER__POLL_INTERVAL_S", "5")
    mltrack.configure()
    settings = plugin_settings("sagemaker")
    assert (settings.region, settings.bucket, settings.poll_interval_s) == ("eu-west-1", "team-models", 5.0)
