"""The documentation stays true: every hook is documented with its exact signature, and the README
quickstart, the example script and the plugin tutorial's code run as written."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from mltrack import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DOC = ROOT / "docs" / "hooks.md"
README = ROOT / "README.md"
QUICKSTART = ROOT / "examples" / "quickstart.py"
PLUGIN_GUIDE = ROOT / "docs" / "plugin-authors.md"
FIXTURE_PLUGIN = ROOT / "tests" / "fixtures" / "mltrack-fixture-plugin"


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """Every hook declared in mltrack.hookspecs (pluggy's HookspecMarker sets ``mltrack_spec``)."""
    return {
        name: func
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, f"{hookspecs.PROJECT_NAME}_spec")
    }


def signature_text(name: str, func: Callable[..., Any]) -> str:
    return f"{name}({', '.join(inspect.signature(func).parameters)})"


def headings(path: Path, level: str = "###") -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith(level + " ")]


def env_without_tracking_uri() -> dict[str, str]:
    """This process's environment (strict plugins, broken fixtures disabled) minus any tracking URI,
    so a child uses the default sqlite store in its working directory."""
    return {k: v for k, v in os.environ.items() if k not in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI")}


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env_without_tracking_uri(), timeout=120
    )


def runs_in(cwd: Path, experiment: str) -> list[dict[str, Any]]:
    result = run_cli("runs", "list", "--experiment", experiment, "--json", env=env_without_tracking_uri(), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def first_code_block(markdown: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    assert match, f"no ```{language} block found"
    return match.group(1)


def test_hookspecs_are_found() -> None:
    assert {"register_sinks", "infer_flavour", "on_run_end"} <= set(hookspec_functions())


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hook_has_a_heading_with_its_exact_signature(name: str) -> None:
    signature = signature_text(name, hookspec_functions()[name])
    matching = [h for h in headings(HOOKS_DOC) if signature in h]
    assert matching, f"docs/hooks.md has no '### ...{signature}...' heading"


def test_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = {m.group(1) for h in headings(HOOKS_DOC) if (m := re.search(r"`(\w+)\(", h))}
    assert documented == set(hookspec_functions())


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    code = first_code_block(README.read_text(), "python")
    script = tmp_path / "quickstart.py"
    script.write_text(code)

    result = run_script([str(script)], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlflow.db").is_file()
    runs = runs_in(tmp_path, "readme")
    assert sorted(r["name"] for r in runs) == ["manual", "train"]
    assert {r["status"] for r in runs} == {"FINISHED"}


def test_example_quickstart_runs_and_records_a_tracked_run(tmp_path: Path) -> None:
    result = run_script([str(QUICKSTART)], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "finished with status FINISHED" in result.stdout
    [run] = runs_in(tmp_path, "quickstart")
    assert run["run_id"] in result.stdout
    assert run["params"]["learning_rate"] == "0.05"
    assert run["metrics"]["final_val_loss"] < 0.05


def test_plugin_tutorial_shows_the_fixture_plugin_code_unchanged() -> None:
    guide = PLUGIN_GUIDE.read_text()
    files = [FIXTURE_PLUGIN / "pyproject.toml", *sorted((FIXTURE_PLUGIN / "src" / "mltrack_fixture").glob("[!_]*.py"))]
    for path in files:
        assert path.read_text().strip() in guide, f"docs/plugin-authors.md no longer matches {path.relative_to(ROOT)}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_readme_lists_the_make_targets_that_make_help_prints() -> None:
    result = subprocess.run(["make", "--no-print-directory", "help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    readme = README.read_text()
    for line in result.stdout.splitlines():
        assert line in readme, f"README.md is missing the make help line {line!r}"
