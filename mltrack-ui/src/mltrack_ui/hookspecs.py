"""Hooks the UI declares, so any plugin can add to its pages without depending on mltrack-ui.

A plugin implements them with ``@mltrack.hookimpl(optionalhook=True)``: where mltrack-ui is not
installed nobody declares these hooks, and ``optionalhook`` keeps the plugin loading anyway.

A panel is a plain dict, so a plugin needs nothing from this package to return one:

``{"title": "Model summary", "kind": "keyvalue", "data": {"parameters": "1,234"}}``
``{"title": "Layers", "kind": "table", "data": {"columns": ["name", "type"], "rows": [["fc1", "Linear"]]}}``
``{"title": "Notes", "kind": "text", "data": "free text"}``

The front end renders every value as text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict

from mltrack.hookspecs import hookspec

PanelKind = Literal["keyvalue", "table", "text"]


class Panel(TypedDict):
    """One panel on the run or model page (the dict a panel hook returns)."""

    title: str
    kind: PanelKind
    data: Any


@hookspec
def ui_run_panels(run: dict[str, Any]) -> list[Panel] | None:
    """Return panels for the run page of ``run``, or None for none.

    Called each time a run page is opened. ``run`` is the API's run document: ``info`` (run_id,
    run_name, experiment_id, status, start_time, end_time, artifact_uri), ``params``, ``metrics``
    (latest values) and ``tags``. Keep it fast: the page waits for the answer.
    """


@hookspec
def ui_model_panels(model: dict[str, Any]) -> list[Panel] | None:
    """Return panels for one registered model version, or None for none.

    Called each time a model page shows a version. ``model`` has ``name``, ``version``, ``source``
    (the model's artifact URI), ``run_id``, ``aliases`` and ``tags``.
    """


@hookspec
def ui_register_routes(register: Callable[[Any], None]) -> None:
    """Register a ``fastapi.APIRouter`` served under ``/-/<plugin>/``.

    Called once, when the UI app is built. The routes sit behind the UI's authentication like
    every API route. Returns nothing.
    """
