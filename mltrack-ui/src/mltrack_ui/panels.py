"""Panels other plugins add to the run and model pages, through the UI's own hooks."""

from __future__ import annotations

import logging
from typing import Any

from mltrack import MLTrackError, get_plugin_manager

logger = logging.getLogger("mltrack.ui")

PANEL_KINDS = frozenset({"keyvalue", "table", "text"})


def _problem(panel: Any) -> str | None:
    """What is wrong with a panel a plugin returned, or None."""
    if not isinstance(panel, dict):
        return f"a panel must be a dict, got {type(panel).__name__}"
    if not isinstance(panel.get("title"), str):
        return "a panel needs a string 'title'"
    kind, data = panel.get("kind"), panel.get("data")
    if kind not in PANEL_KINDS:
        return f"panel kind {kind!r} is not one of {', '.join(sorted(PANEL_KINDS))}"
    if kind == "keyvalue" and not isinstance(data, dict):
        return "a keyvalue panel's 'data' must be a dict"
    if kind == "table" and not (
        isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("rows"), list)
    ):
        return "a table panel's 'data' must be {'columns': [...], 'rows': [[...], ...]}"
    if kind == "text" and not isinstance(data, str):
        return "a text panel's 'data' must be a string"
    return None


def _as_text(value: Any) -> Any:
    # Values reach the browser as JSON strings, so nothing a plugin returns can become markup.
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _clean(panel: dict[str, Any]) -> dict[str, Any]:
    data = panel["data"]
    if panel["kind"] == "keyvalue":
        data = {str(k): _as_text(v) for k, v in data.items()}
    elif panel["kind"] == "table":
        data = {
            "columns": [str(c) for c in data["columns"]],
            "rows": [[_as_text(cell) for cell in row] for row in data["rows"]],
        }
    return {"title": panel["title"], "kind": panel["kind"], "data": data}


def collect_panels(hook_name: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every plugin's panels from ``hook_name``, each stamped with its plugin; a plugin that
    fails or returns something malformed gets an error panel instead of breaking the page."""
    panels: list[dict[str, Any]] = []
    manager = get_plugin_manager()
    try:
        answers = list(manager.call_each(hook_name, **kwargs))
    except MLTrackError as exc:  # strict plugin mode re-raises a plugin's error
        return [{"title": "Plugin error", "kind": "text", "data": exc.message, "plugin": None, "error": True}]
    for plugin, result in answers:
        for panel in result or []:
            problem = _problem(panel)
            if problem is not None:
                logger.warning("mltrack-ui: plugin %r returned a bad panel from %s: %s", plugin, hook_name, problem)
                panels.append(
                    {
                        "title": f"{plugin}: invalid panel",
                        "kind": "text",
                        "data": problem,
                        "plugin": plugin,
                        "error": True,
                    }
                )
                continue
            panels.append({**_clean(panel), "plugin": plugin, "error": False})
    return panels
