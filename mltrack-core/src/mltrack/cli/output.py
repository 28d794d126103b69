"""How the ``mltrack`` commands print: rich consoles and tables, and strict JSON for ``--json``.

Its own module, below the command modules, so that ``cli`` and the command groups it adds
(``cli_artifacts``, ``cli_deploy``) share it without importing each other.
"""

from __future__ import annotations

import json
from typing import Any

import click

from mltrack.storage.records import finite_or_none

# rich (about 100 modules) is imported when something is printed, not for `mltrack --help`
# (benchmarks/import_time.py).


def _console() -> Any:
    from rich.console import Console

    return Console()


def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def echo_json(data: Any, *, indent: int | None = 2) -> None:
    """Print ``data`` as strict JSON, the form of every ``--json`` output.

    ``json.dumps`` writes NaN and infinity as bare ``NaN``/``Infinity``, which JSON parsers
    (``jq``, ``JSON.parse``) reject; they are printed as ``null``, as the UI's API sends them.
    """
    click.echo(json.dumps(finite_or_none(data), indent=indent, default=str, allow_nan=False))
