"""The model's MLflow signature, compiled once into checks that run per request.

MLflow enforces a signature inside ``predict``, after the request has become a DataFrame,
and its errors name neither the request nor the row. The server checks each request
against the same signature before it is batched, so one bad request gets a 400 naming the
column, row and expected type, and never reaches (or poisons) a batch of good ones.
Types MLTrack does not check itself (MLflow's ``Array``, ``Object``, ``Map``, ``Any``)
pass through unchecked; MLflow's enforcement in ``predict`` still applies to them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# mlflow is imported inside functions: importing the serving app loads no mlflow; loading a model does.


class ValueProblem(Exception):
    """A value that does not fit its column: raised with the row index and a description."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(problem)
        self.row = row
        self.problem = problem


def describe(value: Any) -> str:
    """How a JSON value reads in an error message: ``'abc' (a string)``."""
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return "null" if value is None else f"{shown} ({kind})"


def _first_bad(values: list[Any], ok: Callable[[Any], bool], expected: str) -> ValueProblem:
    for row, value in enumerate(values):
        if not ok(value):
            return ValueProblem(row, f"{describe(value)} is not {expected}")
    return ValueProblem(0, f"a value is not {expected}")  # pragma: no cover - callers found one


def _check_float(values: list[Any], required: bool) -> list[Any]:
    kinds = set(map(type, values))
    if kinds <= {float, int}:
        return values
    allowed = {float, int} if required else {float, int, type(None)}
    if kinds <= allowed:
        return [np.nan if v is None else v for v in values]
    raise _first_bad(values, lambda v: type(v) in allowed, "a number")


def _int_checker(low: int, high: int, name: str) -> Callable[[list[Any], bool], list[Any]]:
    def check(values: list[Any], required: bool) -> list[Any]:
        kinds = set(map(type, values))
        if not kinds <= {int}:
            if not kinds <= {int, float}:
                raise _first_bad(values, lambda v: type(v) in (int, float), f"an integer ({name})")
            if not all(type(v) is int or v.is_integer() for v in values):
                raise _first_bad(values, lambda v: type(v) is int or v.is_integer(), f"an integer ({name})")
            values = [int(v) for v in values]
        if values and (min(values) < low or max(values) > high):
            raise _first_bad(values, lambda v: low <= v <= high, f"within the range of a {name} ({low}..{high})")
        return values

    return check


def _check_bool(values: list[Any], required: bool) -> list[Any]:
    if set(map(type, values)) <= {bool}:
        return values
    raise _first_bad(values, lambda v: type(v) is bool, "a boolean (true or false)")


def _check_str(values: list[Any], required: bool) -> list[Any]:
    allowed = {str} if required else {str, type(None)}
    if set(map(type, values)) <= allowed:
        return values
    raise _first_bad(values, lambda v: type(v) in allowed, "a string")


def _check_binary(values: list[Any], required: bool) -> list[Any]:
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None and not required:
            out.append(None)
            continue
        if type(value) is not str:
            raise ValueProblem(row, f"{describe(value)} is not binary data (a base64-encoded string)")
        try:
            out.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise ValueProblem(row, f"{describe(value)} is not valid base64")
    return out


def _check_datetime(values: list[Any], required: bool) -> list[Any]:
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None and not required:
            out.append(np.datetime64("NaT"))
            continue
        if type(value) is not str:
            raise ValueProblem(row, f"{describe(value)} is not a datetime (an ISO 8601 string)")
        try:
            out.append(np.datetime64(value, "ns"))
        except ValueError:
            raise ValueProblem(row, f"{describe(value)} is not an ISO 8601 datetime")
    return out


def _unchecked(values: list[Any], required: bool) -> list[Any]:
    return values


#: MLflow DataType name -> (numpy dtype the column is built with, checker, what a JSON client sends)
_SCALARS: dict[str, tuple[Any, Callable[[list[Any], bool], list[Any]], str]] = {
    "double": (np.dtype("float64"), _check_float, "number"),
    "float": (np.dtype("float32"), _check_float, "number"),
    "long": (np.dtype("int64"), _int_checker(-(2**63), 2**63 - 1, "long"), "integer"),
    "integer": (np.dtype("int32"), _int_checker(-(2**31), 2**31 - 1, "integer"), "integer"),
    "boolean": (np.dtype("bool"), _check_bool, "boolean"),
    "string": (np.dtype("object"), _check_str, "string"),
    "binary": (np.dtype("object"), _check_binary, "base64 string"),
    "datetime": (np.dtype("datetime64[ns]"), _check_datetime, "ISO 8601 string"),
}


@dataclass(frozen=True)
class Column:
    """One column of a column-based signature."""

    name: str | int  #: the column's name, or its position in an unnamed signature
    type_name: str  #: MLflow's type name ("double", "long", ...; "array", "object", "map", "any")
    required: bool
    dtype: Any  #: the numpy dtype the batch's column is built with
    check: Callable[[list[Any], bool], list[Any]] = field(compare=False, repr=False)

    def convert(self, values: list[Any]) -> list[Any]:
        """``values`` checked and coerced for this column; raises ``ValueProblem``."""
        return self.check(values, self.required)

    @property
    def label(self) -> str:
        return f"column {self.name!r}" if isinstance(self.name, str) else f"column {self.name}"


@dataclass(frozen=True)
class Tensor:
    """One tensor of a tensor-based signature (``name`` is None for a single unnamed tensor)."""

    name: str | None
    dtype: Any  #: numpy dtype
    shape: tuple[int, ...]  #: -1 marks a variable dimension

    @property
    def batch_dim(self) -> bool:
        """Whether the first dimension is variable, so requests can be concatenated along it."""
        return bool(self.shape) and self.shape[0] == -1

    @property
    def label(self) -> str:
        return "the input tensor" if self.name is None else f"tensor {self.name!r}"


@dataclass(frozen=True)
class InputSpec:
    """What a request must hold: ``kind`` is "columns", "tensors" or "any" (no signature)."""

    kind: str
    columns: tuple[Column, ...] = ()
    named: bool = True  #: whether the columns have names (else they are positional)
    tensors: tuple[Tensor, ...] = ()

    @property
    def required(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.required)

    def expected_columns(self) -> str:
        names = [str(c.name) for c in self.columns]
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        return shown


def _column(spec: Any, position: int) -> Column:
    from mlflow.types.schema import DataType

    kind = spec.type
    type_name = kind.name if isinstance(kind, DataType) else None
    name = spec.name if spec.name is not None else position
    required = bool(getattr(spec, "required", True))
    if type_name in _SCALARS:
        dtype, check, _ = _SCALARS[type_name]
        return Column(name, type_name, required, dtype, check)
    # Array, Object, Map, AnyType: built as object columns, enforced by MLflow inside predict
    label = type(kind).__name__.lower().replace("type", "") or "any"
    return Column(name, label, required, np.dtype("object"), _unchecked)


class JsonSchema:
    """One part of a signature as the MLmodel file stores it (a list of column or tensor
    dicts); ``to_dict`` gives them back as MLflow's ``Schema.to_dict`` would."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def to_dict(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.items]


@dataclass(frozen=True)
class JsonSignature:
    """A model signature read from the MLmodel file without MLflow, for signatures whose
    inputs are scalar columns only (``scalar_signature`` makes one). Serves the same
    checks and the same ``/metadata`` as MLflow's ``ModelSignature``."""

    inputs: JsonSchema
    outputs: JsonSchema | None
    params: JsonSchema | None = None


def scalar_signature(document: Any) -> JsonSignature | None:
    """The ``signature`` entry of an MLmodel dict as a ``JsonSignature``, or None when it is
    not one this module checks completely without MLflow: inputs that are named (or all
    unnamed) scalar columns of the types in ``_SCALARS``, and no params."""

    if not isinstance(document, dict) or document.get("params"):
        return None
    try:
        inputs = json.loads(document["inputs"]) if document.get("inputs") else None
        outputs = json.loads(document["outputs"]) if document.get("outputs") else None
    except (TypeError, ValueError):
        return None
    if not isinstance(inputs, list) or not inputs or not isinstance(outputs, (list, type(None))):
        return None
    if not all(isinstance(item, dict) and item.get("type") in _SCALARS for item in inputs):
        return None
    names = [item.get("name") for item in inputs]
    if any(name is not None and not isinstance(name, str) for name in names):
        return None
    if None in names and any(name is not None for name in names):
        return None
    if not all(isinstance(item.get("required", True), bool) for item in inputs):
        return None
    return JsonSignature(JsonSchema(inputs), JsonSchema(outputs) if outputs is not None else None)


def _compile_json(signature: JsonSignature) -> InputSpec:
    columns = []
    for position, item in enumerate(signature.inputs.items):
        type_name = item["type"]
        dtype, check, _ = _SCALARS[type_name]
        name = item.get("name")
        columns.append(
            Column(name if name is not None else position, type_name, bool(item.get("required", True)), dtype, check)
        )
    named = all(item.get("name") is not None for item in signature.inputs.items)
    return InputSpec("columns", columns=tuple(columns), named=named)


def compile_signature(signature: Any) -> InputSpec:
    """The ``InputSpec`` of an MLflow ``ModelSignature`` or a ``JsonSignature`` (or None:
    anything goes)."""
    if isinstance(signature, JsonSignature):
        return _compile_json(signature)
    schema = getattr(signature, "inputs", None)
    if schema is None or not getattr(schema, "inputs", None):
        return InputSpec("any")
    if schema.is_tensor_spec():
        tensors = tuple(Tensor(t.name, np.dtype(t.type), tuple(int(d) for d in t.shape)) for t in schema.inputs)
        return InputSpec("tensors", tensors=tensors, named=schema.has_input_names())
    columns = tuple(_column(spec, i) for i, spec in enumerate(schema.inputs))
    return InputSpec("columns", columns=columns, named=schema.has_input_names())


def expected_json_type(column: Column) -> str:
    """What a JSON client should send for ``column`` (for error messages)."""
    scalar = _SCALARS.get(column.type_name)
    return f"a {column.type_name} ({scalar[2]})" if scalar else f"an {column.type_name} value"
