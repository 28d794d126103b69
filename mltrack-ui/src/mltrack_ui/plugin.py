"""Hook implementations of the ``ui`` plugin (FastAPI and uvicorn are imported only by `mltrack ui`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mltrack
from mltrack_ui import hookspecs

if TYPE_CHECKING:
    import click

# The plugin manager adds these hookspecs when it loads this module, so other plugins'
# ``ui_*`` implementations are validated against them.
mltrack_hookspecs = hookspecs


@mltrack.hookimpl
def register_settings(register: Callable[[type[Any]], None]) -> None:
    from mltrack_ui.settings import UISettings

    register(UISettings)


@mltrack.hookimpl
def register_commands(cli: click.Group) -> None:
    from mltrack_ui.cli import ui_command

    cli.add_command(ui_command)
