"""``mltrack plugins new``: a plugin package, ready to install, whose tests pass as generated.

The templates are package data (``templates/common`` for every kind, ``templates/<kind>`` on
top), plain text with ``{{placeholders}}``, so neither ruff, mypy nor pytest mistakes them for
code of this package. A file ``x.py.tmpl`` becomes ``x.py``; a folder ``_package_`` becomes
the import package ``mltrack_<id>``.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from mltrack._version import __version__
from mltrack.errors import InvalidInputError

__all__ = ["KINDS", "new_plugin"]

#: kind -> (what the package holds, the hook its first test expects, its conformance suite)
KINDS: dict[str, tuple[str, str, str]] = {
    "provider": (
        "A deploy provider that serves models from a server process it starts",
        "register_deploy_providers",
        "deploy-provider conformance suite (ProviderConformance)",
    ),
    "flavour": ("A model flavour", "register_flavours", "flavour conformance suite (FlavourConformance)"),
    "sink": (
        "A logging sink that writes every batch to a JSON-lines file",
        "register_sinks",
        "sink conformance suite (SinkConformance)",
    ),
    "ui": ("A panel on the MLTrack UI's run page", "ui_run_panels", "tests"),
}

_USAGE = {
    "provider": "```bash\nmltrack deploy MODEL --provider {{id}}\nmltrack deployments list\n```",
    "flavour": "```python\nimport mltrack\nfrom {{package}}.model import {{Class}}Model\n\n"
    'model = {{Class}}Model({"x": 2.0}, bias=1.0)\n'
    'mltrack.register_model(model, "my-model")   # saved with the {{id}} flavour\n```',
    "sink": "```bash\nexport MLTRACK_PLUGINS__{{ID}}__PATH=batches.jsonl   # or path in [tool.mltrack.plugins.{{id}}]\n"
    "python train.py                           # every run's batches land in batches.jsonl\n```",
    "ui": "```bash\nmltrack ui     # every run page shows the {{Class}} summary panel\n```",
}

_LAYOUT = {
    "provider": "`provider.py` is the `ProcessProvider` (change `command` to start the server your way)",
    "flavour": "`flavour.py` saves and loads the models of `model.py` (replace it with your framework)",
    "sink": "`sink.py` is the sink, `settings.py` its settings section",
    "ui": "`panels.py` builds the panels (plain dicts)",
}

#: what each kind's modules import besides mltrack (every distribution declares what it imports)
_REQUIRES = {
    "provider": ["pydantic>=2.7"],
    "flavour": ["mlflow>=3.4,<4", "pandas>=2"],
    "sink": ["pydantic>=2.7"],
    "ui": [],
}

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def new_plugin(name: str, kind: str, directory: Path | None = None) -> Path:
    """Write the package of plugin ``name`` (a ``kind`` from ``KINDS``) and return its folder.

    Args:
        name: the plugin id: lower-case letters, digits and single dashes, starting with a letter
            (the distribution is ``mltrack-<name>``, the import package ``mltrack_<name>``).
        directory: where the package goes (default ``./mltrack-<name>``); it must not exist yet.

    Raises:
        InvalidInputError: for a bad name or kind, or a folder that exists.
    """
    name = name.removeprefix("mltrack-")
    if not _NAME.match(name):
        suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        raise InvalidInputError(
            "NAME",
            name,
            "is not a plugin id (lower-case letters, digits and single dashes, starting with a letter)",
            hint=f"try {suggestion!r}" if _NAME.match(suggestion) else "for example: mltrack plugins new acme-box",
        )
    if kind not in KINDS:
        raise InvalidInputError("--kind", kind, "is not a kind of plugin", hint=f"use one of {', '.join(KINDS)}")
    target = Path(directory) if directory is not None else Path.cwd() / f"mltrack-{name}"
    if target.exists():
        raise InvalidInputError(
            "--dir",
            str(target),
            "already exists; nothing was written",
            hint="choose another folder with --dir, or move that one away",
        )
    values = _values(name, kind)
    files: dict[Path, str] = {}
    templates = resources.files(__name__).joinpath("templates")
    for layer in ("common", kind):
        for relative, template in _walk(templates.joinpath(layer), Path()):
            files[relative] = template.read_text(encoding="utf-8")
    for relative, text in sorted(files.items()):
        path = target / _render(str(relative), values).replace("_package_", values["package"]).removesuffix(".tmpl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(text, values), encoding="utf-8")
    return target


def _values(name: str, kind: str) -> dict[str, str]:
    description, hook, suite = KINDS[kind]
    major, minor = (int(part) for part in __version__.split(".")[:2])
    core_range = f">={major}.{minor},<{major}.{minor + 1}"
    values = {
        "id": name,
        "ID": name.upper().replace("-", "_"),
        "dist": f"mltrack-{name}",
        "package": f"mltrack_{name.replace('-', '_')}",
        "Class": "".join(part.capitalize() for part in name.split("-")),
        "description": description,
        "hook": hook,
        "suite": suite,
        "layout": _LAYOUT[kind],
        # the range of core releases whose plugin contract this package was written against
        "dependencies": ", ".join(f'"{r}"' for r in [f"mltrack-core{core_range}", *_REQUIRES[kind]]),
        "core": f"mltrack-core[testing]{core_range}",
    }
    values["usage"] = _render(_USAGE[kind], values)
    return values


def _render(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def _walk(folder: Traversable, prefix: Path) -> list[tuple[Path, Traversable]]:
    found: list[tuple[Path, Traversable]] = []
    for entry in folder.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            found += _walk(entry, prefix / entry.name)
        else:
            found.append((prefix / entry.name, entry))
    return found
