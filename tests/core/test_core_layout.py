"""The core's import graph has no cycle (issue 14): each part can be read from the bottom up.

The graph is the one `lint-imports` checks (grimp; imports inside functions count, imports under
``if TYPE_CHECKING:`` do not). ``.importlinter``'s core-layers contract keeps the order of the
layers; these tests catch what a layers contract lets through: modules of one layer (or of one
subpackage) importing each other in a circle, and a top-level part missing from the layers.
They also keep the layout's two constraints on names: no subpackage is named like a name of the
user API, and the python flavour stays where models logged with it look for it.
"""

from __future__ import annotations

import configparser
import itertools
import re
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
