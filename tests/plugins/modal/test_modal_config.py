"""The Modal deployment config: GPU names, counts and fallbacks checked here (Modal does not check them
locally), every bad field named, and the docs page's tables generated from these models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mltrack.deployment.deployments import validate_config
from mltrack.errors import InvalidInputError
from mltrack_modal.config import ModalDeploymentConfig, ModalSettings
from mltrack_modal.provider import ModalProvider
from mltrack_modal.reference import render_page

DOCS_PAGE = Path(__file__).resolve().parents[3] / "docs" / "providers" / "modal.md"


def config(**values: Any) -> ModalDeploymentConfig:
    validated = validate_config(ModalProvider, values)
    assert isinstance(validated, ModalDeploymentConfig)
    return validated


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("T4", "T4"),
        ("a10g", "A10G"),
        ("A100-80GB", "A100-80GB"),
        ("h100:2", "H100:2"),
        ("H100:1", "H100"),
        ("B200+", "B200+"),
        ("H100!", "H100!"),
        ("rtx-pro-6000:8", "RTX-PRO-6000:8"),
        (["H100", "a100-80gb:2", "L40S"], ["H100", "A100-80GB:2", "L40S"]),
    ],
)
def test_gpu_names_counts_and_fallback_lists_are_accepted_in_modals_spelling(given: Any, normalized: Any) -> None:
    assert config(gpu=given).gpu == normalized


def test_modal_itself_accepts_any_gpu_name_locally_which_is_why_the_config_checks_them() -> None:
    import modal

    app = modal.App("mltrack-gpu-check")
    app.function(gpu="bogus", serialized=True)(lambda: None)  # no error until Modal's servers see it


@pytest.mark.parametrize(
    ("gpu", "problem"),
    [
        ("V100", "unknown Modal GPU 'V100'"),
        ("A100-40G", "unknown Modal GPU 'A100-40G'"),
        ("H100:9", "H100 containers take 1 to 8 GPUs, not 9"),
        ("A10G:5", "A10G containers take 1 to 4 GPUs, not 5"),
        ("T4:0", "T4 containers take 1 to 8 GPUs, not 0"),
        ("T4:two", "must be a whole number"),
        ([], "needs at least one GPU"),
        (["T4", "t4"], "names a GPU twice"),
    ],
)
def test_bad_gpu_requests_are_refused_naming_the_field_and_the_problem(gpu: Any, problem: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        config(gpu=gpu)
    assert "gpu" in str(caught.value) and problem in str(caught.value)


def test_every_bad_field_is_named_at_once_with_the_accepted_fields_in_the_hint() -> None:
    with pytest.raises(InvalidInputError) as caught:
        config(gpu="T4", min_containers=-1, scaledown_window=1, timeout=0, concurrency=0, instance_type="ml.m5.large")
    message = str(caught.value)
    for field in ("min_containers", "scaledown_window", "timeout", "concurrency", "instance_type"):
        assert field in message
    assert caught.value.hint is not None and "app_name" in caught.value.hint and "gpu" in caught.value.hint


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"min_containers": 3, "max_containers": 2}, "min_containers (3) is larger than max_containers (2)"),
        ({"app_name": "My_App"}, "app_name"),
        ({"secrets": ["hf token"]}, "secrets"),
        ({"secrets": ["hf", "hf"]}, "secrets"),
        ({"environment": "-dev"}, "environment"),
        ({"memory": 64}, "memory"),
        ({"cpu": 0}, "cpu"),
    ],
)
def test_scaling_names_and_resources_are_checked(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field.replace("(", r"\(").replace(")", r"\)")):
        config(**values)


def test_the_config_maps_onto_modals_current_function_options() -> None:
    options = config(gpu="L4", cpu=2, memory=4096, min_containers=1, max_containers=4, buffer_containers=1)
    assert options.modal_function_options() == {
        "gpu": "L4",
        "cpu": 2.0,
        "memory": 4096,
        "min_containers": 1,
        "max_containers": 4,
        "buffer_containers": 1,
        "scaledown_window": 60,
        "timeout": 300,
    }
    assert config().modal_function_options() == {"min_containers": 0, "scaledown_window": 60, "timeout": 300}


def test_settings_take_a_token_pair_or_none() -> None:
    assert ModalSettings().token_id is None
    ModalSettings(token_id="ak-1", token_secret="as-1")
    with pytest.raises(ValueError, match="token_id and token_secret go together"):
        ModalSettings(token_id="ak-1")
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ModalSettings(region="us-east")  # type: ignore[call-arg]


def test_the_docs_page_tables_are_the_ones_generated_from_the_models() -> None:
    text = DOCS_PAGE.read_text()
    assert render_page(text) == text, "docs/providers/modal.md is stale: regenerate it with render_page"
    for field in [*ModalDeploymentConfig.model_fields, *ModalSettings.model_fields]:
        assert f"| `{field}` |" in text
