"""The core's import graph has no cycle (issue 14): each part can be read from the bottom up.

The graph is the one `lint-imports` checks (grimp; imports inside functions count, imports under
``if TYPE_CHECKING:`` do not). ``.importlinter``'s core-layers contract keeps the order of the
layers; these tests catch what a layers contract lets through: modules of one layer (or of one
subpackage) importing each other in a circle, and a top-level part missing from the layers.
They also keep the layout's two constraints on names: no subpackage is named like a name of the
user API, and the python flavour stays where models logged with it look for it. And imports sit
at the top of their module, except those that keep a heavy package out of a light path (read from
the source: what each module's top-level imports load, through the core's own modules).
"""

from __future__ import annotations

import ast
import configparser
import itertools
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest

import mltrack

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "mltrack-core/src/mltrack"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("mltrack", exclude_type_checking_imports=True, cache_dir=None)


def _cycle(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` among ``nodes``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _edges(graph: grimp.ImportGraph, name: Callable[[str], str | None]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = name(module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = name(imported)
            if source and target and source != target:
                edges.setdefault(source, set()).add(target)
    return edges


def _part(module: str) -> str | None:
    """The child of ``mltrack`` a module belongs to (a subpackage is one part); None for the
    package itself, whose lazy re-exports of the user API sit above everything."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else None


def _explain(graph: grimp.ImportGraph, cycle: list[str], name: Callable[[str], str | None]) -> str:
    lines = []
    for source, target in itertools.pairwise(cycle):
        where = [
            f"{d['importer']}:{d['line_number']} imports {d['imported']}"
            for importer in graph.modules
            if name(importer) == source
            for imported in graph.find_modules_directly_imported_by(importer)
            if name(imported) == target
            for d in graph.get_import_details(importer=importer, imported=imported)
        ]
        lines.append(f"  {source} -> {target}: {'; '.join(sorted(where)[:3])}")
    return "\n".join(lines)


def test_no_import_cycle_between_the_parts_of_the_core(graph: grimp.ImportGraph) -> None:
    edges = _edges(graph, _part)
    cycle = _cycle(edges, edges)
    assert cycle is None, "import cycle in mltrack:\n" + _explain(graph, cycle or [], _part)


def test_no_import_cycle_between_the_modules_of_the_core(graph: grimp.ImportGraph) -> None:
    # a package's __init__ importing its own modules (and they it) is how Python packages work
    def module(name: str) -> str | None:
        return None if name == "mltrack" else name

    edges = _edges(graph, module)
    for package in graph.modules:
        for child in graph.find_children(package):
            edges.get(package, set()).discard(child)
            edges.get(child, set()).discard(package)
    cycle = _cycle(edges, edges)
    assert cycle is None, "import cycle in mltrack:\n" + _explain(graph, cycle or [], module)


def test_no_module_of_the_core_shadows_a_name_of_the_user_api() -> None:
    # importing mltrack.x.y binds the attribute x of mltrack to the subpackage, which then hides
    # the lazy re-export of the same name: a package `mltrack/deploy/` would turn mltrack.deploy,
    # the function, into a module (hence `mltrack/deployment/`)
    children = {p.stem for p in CORE.glob("*.py")} | {p.name for p in CORE.iterdir() if (p / "__init__.py").is_file()}
    clash = sorted(children & set(mltrack.__all__))
    assert not clash, f"core modules named like names of the user API (mltrack.__all__): {clash}; rename the module"


def test_the_module_that_logged_python_models_name_stays_where_it_was() -> None:
    # a model logged with the python flavour holds this cloudpickled wrapper, which refers to
    # functions of its module by module name: moving the module breaks loading every such model
    import cloudpickle

    from mltrack.python_flavour import PythonFlavour

    pickled = cloudpickle.dumps(PythonFlavour()._python_model(lambda rows: rows))
    assert b"mltrack.python_flavour" in pickled


def test_every_top_level_part_of_the_core_has_a_layer() -> None:
    # a module missing from the layers contract is checked by nothing: it may import anything
    contracts = configparser.ConfigParser()
    contracts.read(ROOT / ".importlinter")
    layered = set(re.split(r"[\s|:]+", contracts["importlinter:contract:core-layers"]["layers"].strip()))
    parts = {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
    parts |= {p.name for p in CORE.iterdir() if (p / "__init__.py").is_file()}
    assert parts == layered, (
        f"in mltrack but in no layer of .importlinter's core-layers contract: {sorted(parts - layered)}; "
        f"in a layer but not in mltrack: {sorted(layered - parts)}"
    )


# -- imports inside functions -------------------------------------------------------------------

# Packages (and their submodules) whose import costs 20 ms or more (`python -X importtime`), from
# pyyaml's 30 ms to mlflow's seconds, and that `import mltrack` must not load (benchmarks/import_time.py).
HEAVY_ROOTS = frozenset(
    {
        "mlflow",
        "pandas",
        "numpy",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "sqlalchemy",
        "fastapi",
        "starlette",
        "uvicorn",
        "requests",
        "rich",
        "yaml",
        "dotenv",
        "packaging",
        "pytest",
        # `mltrack --help` needs these; `import mltrack`, `mltrack.extend` and the writer process do not
        "click",
        "pluggy",
        "importlib.metadata",
        "urllib.request",
        "multiprocessing",
    }
)
LAZY_MARK = "# lazy:"


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The modules an import statement loads: each dotted name, and `from x import y`'s x.y if it is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        package = package[: len(package) - node.level + (1 if is_package else 0)]
        base = ".".join([*package, *([base] if base else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


class _CoreImports:
    """Each core module's top-level imports and the heavy modules they load, read from the source."""

    def __init__(self, package: Path = CORE) -> None:
        self.package = package
        self.files = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
        self.trees = {name: ast.parse(path.read_text()) for name, path in self.files.items()}
        self._heavy: dict[str, frozenset[str]] = {}

    def top_imports(self, module: str) -> set[str]:
        found: set[str] = set()
        for stmt in self.trees[module].body:
            if _is_type_checking(stmt) or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(stmt):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.update(self.resolve(node, module))
        return found

    def resolve(self, node: ast.Import | ast.ImportFrom, module: str) -> set[str]:
        is_package = self.files[module].name == "__init__.py"
        names = _targets(node, module, is_package)
        if isinstance(node, ast.Import):
            return set(names)
        # `from x import y` loads the module x.y where y is one (known for the core's modules and the heavy ones)
        return {names[0]} | {n for n in names[1:] if n in self.files or n in HEAVY_ROOTS}

    def heavy(self, module: str) -> frozenset[str]:
        """The heavy third-party modules that importing `module` loads (its parents' top levels included)."""
        if module in self._heavy:
            return self._heavy[module]
        self._heavy[module] = frozenset()  # no cycle in the core; this only guards the recursion
        loaded: set[str] = set()
        for name in {n for n in _with_parents(module) if n in self.files}:
            for target in self.top_imports(name):
                loaded |= self.loads(target)
        self._heavy[module] = frozenset(loaded)
        return self._heavy[module]

    def loads(self, target: str) -> set[str]:
        """The heavy modules that importing `target` (a core module or another) loads."""
        if target.split(".")[0] == "mltrack":
            return {m for part in _with_parents(target) if part in self.files for m in self.heavy(part)}
        return _with_parents(target) if _with_parents(target) & HEAVY_ROOTS else set()

    def needless_lazy_imports(self) -> list[str]:
        """Imports inside functions that load nothing heavy beyond what their module loads at its top."""
        found = []
        for module, tree in self.trees.items():
            lines = self.files[module].read_text().splitlines()
            at_top = self.heavy(module)
            for function in ast.walk(tree):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    if not isinstance(node, (ast.Import, ast.ImportFrom)):
                        continue
                    if any(LAZY_MARK in line for line in lines[node.lineno - 1 : node.end_lineno]):
                        continue
                    heavy = {m for target in self.resolve(node, module) for m in self.loads(target)}
                    if not heavy - at_top:
                        where = f"{self.files[module].relative_to(self.package.parent)}:{node.lineno}"
                        found.append(f"{where}: {ast.unparse(node)}")
        return found


def test_imports_inside_functions_are_only_of_modules_heavier_than_their_module() -> None:
    # an import inside a function hides a dependency and repeats a lookup on every call; it pays
    # only where it keeps a heavy package out of `import mltrack`, `mltrack --help`, the writer
    # process or the serving app; any other reason is written on the line as `# lazy: <why>`
    needless = _CoreImports().needless_lazy_imports()
    assert not needless, (
        "imports inside functions that load nothing heavy their module does not load already; "
        f"move them to the top of the module (or say why not with `{LAZY_MARK} <why>`):\n" + "\n".join(needless)
    )


def test_the_lazy_import_check_names_a_needless_one_and_passes_the_heavy_and_the_marked(tmp_path: Path) -> None:
    package = tmp_path / "mltrack"
    (package / "light").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "light" / "__init__.py").write_text("import json\n")
    (package / "heavy.py").write_text("import mlflow\n")
    (package / "user.py").write_text(
        "import yaml\n"
        "def f():\n"
        "    import json\n"  # stdlib: needless
        "    from mltrack.light import x\n"  # a light core module: needless
        "    import mltrack.heavy\n"  # loads mlflow, which this module does not: kept
        "    from mlflow.models import Model\n"  # heavy: kept
        "    import yaml\n"  # heavy, but loaded at the top already: needless
        "    import csv  # lazy: measured elsewhere\n"
    )
    needless = _CoreImports(package).needless_lazy_imports()
    assert [line.split(": ", 1)[0] for line in needless] == [
        "mltrack/user.py:3",
        "mltrack/user.py:4",
        "mltrack/user.py:7",
    ]


def test_import_mltrack_loads_none_of_the_heavy_packages() -> None:
    code = "import sys, mltrack; print(sorted(set(sys.modules) & set(sys.argv[1:])))"
    out = subprocess.run([sys.executable, "-c", code, *HEAVY_ROOTS], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
