"""The configuration reference of docs/providers/modal.md, generated from the pydantic models."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mltrack_modal.config import ModalDeploymentConfig, ModalSettings


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default!r}`"


def config_table(model: type[BaseModel]) -> str:
    """A Markdown table of ``model``'s fields: name, type, default, description."""
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | `{_type_name(field.annotation)}` | {_default(field)} | {description} |")
    return "\n".join(rows)


def reference_tables() -> dict[str, str]:
    """The generated tables of the Modal docs page, by the name of the marker around each."""
    return {"deployment-config": config_table(ModalDeploymentConfig), "settings": config_table(ModalSettings)}


def render_page(text: str) -> str:
    """``text`` (the docs page) with every generated table between its markers replaced by a fresh one."""
    for marker, table in reference_tables().items():
        start, end = f"<!-- generated: {marker} -->", f"<!-- end: {marker} -->"
        before, found, rest = text.partition(start)
        if not found:
            raise ValueError(f"the page has no {start!r} marker")
        _, found_end, after = rest.partition(end)
        if not found_end:
            raise ValueError(f"the page has no {end!r} marker")
        text = f"{before}{start}\n{table}\n{end}{after}"
    return text
