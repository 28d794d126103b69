"""Configuration reference tables for docs pages, generated from pydantic models.

Every provider's docs page shows its settings and deployment config as the same table, made
here, and a test of each plugin checks that the page holds exactly the generated text, so a
page cannot drift from the code.
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        optional = type(None) in get_args(annotation)
        return " \\| ".join(names) + (" \\| null" if optional else "")
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in get_args(annotation))
    if origin is dict:
        key, value = get_args(annotation)
        return f"table of {_type_name(key)} to {_type_name(value)}"
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"table ({annotation.__name__})"
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
    if annotation in simple:
        return simple[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "—"
    try:
        return f"`{json.dumps(value)}`"
    except TypeError:  # a default JSON cannot show (a path, an enum): its repr
        return f"`{value!r}`"


def _constraints(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for attr, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >=")):
            value = getattr(item, attr, None)
            if value is not None:
                found.append(f"{word} {value}")
    return "; ".join(found)


def config_table(model: type[BaseModel]) -> str:
    """A Markdown table of ``model``'s fields: name, type, default, and description with its limits."""
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        limits = _constraints(field).replace("|", "\\|")
        if limits:
            description += f" ({limits})"
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return "\n".join(rows)


def replace_generated(text: str, begin: str, end: str, content: str) -> str:
    """``text`` with what lies between the markers ``begin`` and ``end`` replaced by ``content``.

    Raises ``ValueError`` naming the marker when one is missing.
    """
    before, found, rest = text.partition(begin)
    if not found:
        raise ValueError(f"the page has no {begin!r} marker")
    _, found_end, after = rest.partition(end)
    if not found_end:
        raise ValueError(f"the page has no {end!r} marker")
    return f"{before}{begin}\n{content}\n{end}{after}"
