"""The plugin surface: what `mltrack.extend` offers, and that import-linter guards every other module.

`make lint` runs the contracts of `.importlinter`; these tests keep that file complete (a new
core module is internal until someone decides otherwise) and the extension module honest
(every name resolves, is documented, and importing it stays cheap).
"""

from __future__ import annotations

import configparser
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr

import mltrack.extend as extend
from mltrack.extend import config_table, model_environment, replace_generated

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "mltrack-core/src/mltrack"
PUBLIC = {"mltrack", "mltrack.extend", "mltrack.hookspecs", "mltrack.testing"}


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return parser


def _core_modules() -> set[str]:
    """Every module and subpackage directly under ``mltrack`` (a subpackage counts as one)."""
    found = {f"mltrack.{p.stem}" for p in CORE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    found |= {f"mltrack.{p.name}" for p in CORE.iterdir() if (p / "__init__.py").is_file()}
    return found


def test_every_core_module_but_the_public_ones_is_forbidden_to_plugins() -> None:
    forbidden = set(_contracts()["importlinter:contract:public-surface"]["forbidden_modules"].split())
    missing = sorted(_core_modules() - PUBLIC - forbidden)
    assert not missing, (
        f"core modules {missing} are not in the forbidden_modules of .importlinter's public-surface "
        "contract: add them there (plugins reach core through mltrack.extend), or make them public on purpose"
    )
    gone = sorted(forbidden - _core_modules())
    assert not gone, f".importlinter forbids modules that no longer exist: {gone}; remove them"


def test_the_plugin_contracts_cover_every_plugin_package() -> None:
    packages = {p.name for p in ROOT.glob("mltrack-*/src/mltrack_*") if (p / "__init__.py").is_file()}
    contracts = _contracts()
    assert set(contracts["importlinter:contract:public-surface"]["source_modules"].split()) == packages
    assert set(contracts["importlinter:contract:independent-plugins"]["modules"].split()) == packages


def test_every_extension_name_resolves_and_is_documented() -> None:
    assert set(extend.__all__) == set(extend._EXPORTS) | set(extend._OWN)
    undocumented = []
    for name in extend.__all__:
        value = getattr(extend, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert not undocumented, f"public names without a docstring: {undocumented}"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        extend.nothing_here  # noqa: B018


def test_the_user_api_re_exports_every_error_class() -> None:
    import mltrack.errors

    errors = {
        name
        for name, value in vars(mltrack.errors).items()
        if inspect.isclass(value) and issubclass(value, (Exception, Warning)) and value.__module__ == "mltrack.errors"
    }
    assert errors <= set(mltrack.__all__), f"not re-exported by mltrack: {sorted(errors - set(mltrack.__all__))}"


def test_the_docs_list_every_extension_name() -> None:
    page = (ROOT / "docs/plugin-authors.md").read_text()
    missing = [name for name in extend.__all__ if f"`{name}`" not in page]
    assert not missing, f"docs/plugin-authors.md does not list {missing}"


def test_importing_the_extension_module_loads_no_framework() -> None:
    code = (
        "import sys, mltrack.extend, mltrack.hookspecs; "
        "print(sorted(m for m in ('mlflow', 'fastapi', 'pandas', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_model_environment_reads_requirements_python_and_markers(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# written by MLflow\n"
        "mlflow==3.4.0\n"
        "scikit-learn==1.5.0  # the flavour\n"
        "--extra-index-url https://example.invalid/simple\n"
        "pywin32==306; sys_platform == 'win32'\n"
        "pkg @ https://example.invalid/pkg.whl#sha256=abc\n"
        "\n"
    )
    (tmp_path / "python_env.yaml").write_text("python: 3.10.14\nbuild_dependencies:\n- pip\n")
    environment = model_environment(tmp_path)
    assert environment.requirements == [
        "mlflow==3.4.0",
        "scikit-learn==1.5.0",
        "pywin32==306; sys_platform == 'win32'",
        "pkg @ https://example.invalid/pkg.whl#sha256=abc",
    ]
    assert environment.saved_python == environment.python_version == "3.10"
    assert [r.name for r in environment.parsed_requirements()] == ["mlflow", "scikit-learn", "pkg"]
    assert any("--extra-index-url" in w for w in environment.warnings)

    bare = model_environment(tmp_path / "missing")
    assert bare.requirements == [] and bare.saved_python is None
    assert bare.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert bare.flavour is None and bare.flavour_distribution is None


class _Example(BaseModel):
    name: str = Field(description="what it is | called")
    size: int | None = Field(None, ge=1, description="how big")
    token: SecretStr | None = None
    tags: list[str] = Field(default_factory=list)


def test_the_config_table_renders_every_field_with_type_default_and_limits() -> None:
    assert config_table(_Example).splitlines() == [
        "| field | type | default | description |",
        "|---|---|---|---|",
        "| `name` | string | required | what it is \\| called |",
        "| `size` | integer \\| null | — | how big (>= 1) |",
        "| `token` | secret string \\| null | — |  |",
        "| `tags` | list of string | `[]` |  |",
    ]
    page = "intro\n<!-- a -->\nold\n<!-- /a -->\nrest"
    assert replace_generated(page, "<!-- a -->", "<!-- /a -->", "new") == "intro\n<!-- a -->\nnew\n<!-- /a -->\nrest"
    with pytest.raises(ValueError, match="no '<!-- b -->' marker"):
        replace_generated(page, "<!-- b -->", "<!-- /a -->", "new")


def test_finite_or_none_makes_nested_values_strict_json() -> None:
    value = {"loss": float("nan"), "runs": [1.5, float("inf"), (float("-inf"), "x")], "n": 3}
    cleaned = extend.finite_or_none(value)
    assert cleaned == {"loss": None, "runs": [1.5, None, [None, "x"]], "n": 3}
    assert json.loads(json.dumps(cleaned, allow_nan=False)) == cleaned
