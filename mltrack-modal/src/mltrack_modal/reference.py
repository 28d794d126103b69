"""The configuration reference of docs/providers/modal.md, generated from the pydantic models
by ``mltrack.extend.config_table`` (the table every provider's page uses)."""

from __future__ import annotations

from mltrack.extend import config_table, replace_generated
from mltrack_modal.config import ModalDeploymentConfig, ModalSettings


def reference_tables() -> dict[str, str]:
    """The generated tables of the Modal docs page, by the name of the marker around each."""
    return {"deployment-config": config_table(ModalDeploymentConfig), "settings": config_table(ModalSettings)}


def render_page(text: str) -> str:
    """``text`` (the docs page) with every generated table between its markers replaced by a fresh one."""
    for marker, table in reference_tables().items():
        text = replace_generated(text, f"<!-- generated: {marker} -->", f"<!-- end: {marker} -->", table)
    return text
