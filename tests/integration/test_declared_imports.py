"""Every distribution declares what its code imports.

Each package's source is parsed (``ast``, nothing is imported) and every absolute import that
runs (not one under ``if TYPE_CHECKING:``, not one in a ``try`` that handles ImportError) is
mapped to the installed distribution that provides it. That distribution must be in the
package's ``[project] dependencies``; mltrack-core's test kit (``mltrack.testing``) may also use
its ``testing`` extra. An import that works here only because another package pulled it in
breaks for a user who installs the package alone.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in ROOT.glob("mltrack-*") if (p / "pyproject.toml").is_file())
#: where a test kit may import what the distribution's named extra declares
EXTRA_FOLDERS = {("mltrack-core", "testing"): "mltrack/testing"}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _handles_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
            return True
    return False


def _imports(node: ast.AST) -> Iterator[tuple[str, int]]:
    """(top-level module, line) of every absolute import that runs unconditionally."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield from (item for stmt in child.orelse for item in _imports_of(stmt))
            continue
        if isinstance(child, ast.Try) and _handles_import_error(child):
            continue  # an optional dependency, with its fallback
        yield from _imports_of(child)


def _imports_of(node: ast.AST) -> Iterator[tuple[str, int]]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name.split(".")[0], node.lineno
    elif isinstance(node, ast.ImportFrom):
        if node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
    else:
        yield from _imports(node)


@cache
def _providers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {
        name: [canonicalize_name(d) for d in dists] for name, dists in metadata.packages_distributions().items()
    }
    # editable installs of this repository's packages are not in the metadata's file lists
    for package in PACKAGES:
        for child in (package / "src").iterdir():
            if (child / "__init__.py").is_file():
                found[child.name] = [canonicalize_name(package.name)]
    return found


def _declared(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def _undeclared(package: Path) -> list[str]:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    runtime = _declared(project.get("dependencies", []))
    extras = {name: _declared(reqs) for name, reqs in project.get("optional-dependencies", {}).items()}
    src = package / "src"
    own = {child.name for child in src.iterdir() if child.is_dir()}
    problems = []
    for path in sorted(src.rglob("*.py")):
        relative = path.relative_to(src).as_posix()
        allowed = set(runtime)
        for (dist, extra), folder in EXTRA_FOLDERS.items():
            if dist == package.name and relative.startswith(folder + "/"):
                allowed |= extras.get(extra, set())
        seen = set()
        for module, line in _imports(ast.parse(path.read_text(), str(path))):
            if module in own or module in sys.stdlib_module_names or module == "__future__" or module in seen:
                continue
            seen.add(module)
            if canonicalize_name(module) in allowed:
                continue  # declared under its own name (perhaps for another Python, so not installed here)
            providers = _providers().get(module)
            if providers is None:
                problems.append(f"{relative}:{line} imports {module!r}, which no installed distribution provides")
            elif not allowed.intersection(providers):
                wanted = " or ".join(sorted(set(providers)))
                where = f"{package.name}/pyproject.toml"
                problems.append(f"{relative}:{line} imports {module!r}: declare {wanted} in {where}")
    return problems


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_the_distribution_declares_every_package_it_imports(package: Path) -> None:
    problems = _undeclared(package)
    assert not problems, "\n".join(problems)


def test_mltrack_core_keeps_pytest_to_its_testing_extra() -> None:
    project = tomllib.loads((ROOT / "mltrack-core/pyproject.toml").read_text())["project"]
    assert "pytest" not in _declared(project["dependencies"]), "pytest is for the test kit only"
    assert "pytest" in _declared(project["optional-dependencies"]["testing"])


def test_an_undeclared_import_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "mltrack-example"
    (package / "src/mltrack_example").mkdir(parents=True)
    (package / "pyproject.toml").write_text(
        '[project]\nname = "mltrack-example"\nversion = "0"\ndependencies = ["mltrack-core"]\n'
    )
    (package / "src/mltrack_example/__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import mltrack\n"
        "if TYPE_CHECKING:\n    import pandas\n"
        "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n"
        "def f():\n    import numpy\n"
    )
    assert _undeclared(package) == [
        "mltrack_example/__init__.py:10 imports 'numpy': declare numpy in mltrack-example/pyproject.toml"
    ]
