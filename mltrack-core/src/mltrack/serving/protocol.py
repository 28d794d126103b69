"""MLflow's scoring protocol: request bodies parsed and checked against the signature.

A body is JSON with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (plus optional ``params``), or CSV with a header row. Each
request becomes a ``ModelInput``: plain Python columns or NumPy arrays, already checked
against the model's signature, with a batch key saying which other requests it may be
concatenated with. Anything wrong raises ``RequestError``, whose message names the field,
column or row and what was expected; the app turns it into a 4xx.

JSON is parsed with orjson straight from the body and checked in plain Python rather than
through pydantic models or a per-request DataFrame: on a one-row request that is most of
the time a request costs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from mltrack.errors import MLTrackError
from mltrack.serving.schema import Column, InputSpec, Tensor, ValueProblem, describe, expected_json_type

# pandas (about 0.5 s) is imported only for models that take a DataFrame; numpy-only requests skip it.

DATAFRAME_SPLIT = "dataframe_split"
DATAFRAME_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
FORMATS = (DATAFRAME_SPLIT, DATAFRAME_RECORDS, INSTANCES, INPUTS)
PARAMS = "params"

JSON_TYPES = ("application/json",)
CSV_TYPE = "text/csv"

_MISSING = object()


class RequestError(MLTrackError):
    """A request the server cannot score: the message says what is wrong and where."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        field: str | None = None,
        error_code: str = "BAD_REQUEST",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.field = field
        self.error_code = error_code

    def body(self) -> bytes:
        return error_body(self.error_code, str(self), field=self.field)


def error_body(error_code: str, message: str, *, field: str | None = None) -> bytes:
    """The JSON error document every non-2xx answer carries (MLflow's shape, plus ``field``)."""
    document: dict[str, Any] = {"error_code": error_code, "message": message}
    if field is not None:
        document["field"] = field
    return orjson.dumps(document)


@dataclass
class ModelInput:
    """One request's inputs, checked and ready to be predicted alone or in a batch.

    ``kind`` says what ``data`` holds: "columns" (column name -> list of values, typed
    by the signature), "frame" (the same, no signature: pandas infers the types),
    "tensor" (one ndarray), "tensors" (name -> ndarray) or "raw" (passed as is).
    Requests with equal ``key`` can be concatenated along their rows; ``key`` is None
    for inputs that must be predicted alone.
    """

    kind: str
    data: Any
    rows: int
    key: tuple[Any, ...] | None
    params: dict[str, Any] | None = None


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    mime, *rest = (part.strip() for part in content_type.split(";"))
    options = {}
    for pair in rest:
        key, _, value = pair.partition("=")
        options[key.strip().lower()] = value.strip().strip('"').lower()
    return mime.lower(), options


def parse_request(body: bytes, content_type: str | None, spec: InputSpec) -> ModelInput:
    """Parse and check one ``/invocations`` body; raises ``RequestError`` (400 or 415)."""
    mime, options = _media_type(content_type)
    charset = options.get("charset", "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise RequestError(
            f"charset {charset!r} is not supported; send UTF-8",
            status=415,
            error_code="UNSUPPORTED_MEDIA_TYPE",
            field="Content-Type",
        )
    if mime == CSV_TYPE:
        return parse_csv(body, spec)
    if mime in JSON_TYPES or mime.endswith("+json") or mime == "":
        return parse_json(body, spec)
    raise RequestError(
        f"Content-Type {content_type!r} is not supported; send application/json (MLflow's scoring protocol) "
        "or text/csv with a header row",
        status=415,
        error_code="UNSUPPORTED_MEDIA_TYPE",
        field="Content-Type",
    )


def parse_json(body: bytes, spec: InputSpec) -> ModelInput:
    if not body.strip():
        raise RequestError('the request body is empty; send a JSON object such as {"inputs": ...}')
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the body is not valid JSON: {exc}")
    return parse_document(document, spec)


def _format_of(document: Any) -> str:
    expected = ", ".join(repr(f) for f in FORMATS)
    if not isinstance(document, dict):
        raise RequestError(
            f"the body must be a JSON object with exactly one of {expected}; got {describe(document)}",
            hint='e.g. {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
        )
    unknown = [key for key in document if key not in FORMATS and key != PARAMS]
    if unknown:
        raise RequestError(
            f"unknown field(s) {', '.join(repr(k) for k in unknown)}: the body holds exactly one of {expected}, "
            "and optionally 'params'",
            field=str(unknown[0]),
        )
    found = [key for key in FORMATS if key in document]
    if len(found) != 1:
        problem = "none" if not found else " and ".join(repr(f) for f in found)
        raise RequestError(f"the body must hold exactly one of {expected}; it has {problem}")
    return found[0]


def _params_of(document: dict[str, Any]) -> dict[str, Any] | None:
    params = document.get(PARAMS)
    if params is None:
        return None
    if not isinstance(params, dict):
        raise RequestError(
            f"'params' must be a JSON object of parameter names to values; got {describe(params)}", field=PARAMS
        )
    return params


def parse_document(document: Any, spec: InputSpec) -> ModelInput:
    """A decoded JSON document as a ``ModelInput`` for ``spec``."""
    form = _format_of(document)
    params = _params_of(document)
    value = document[form]
    if spec.kind == "tensors":
        parsed = _tensor_input(form, value, spec)
    elif spec.kind == "columns":
        parsed = _column_input(form, value, spec)
    else:
        parsed = _unchecked_input(form, value)
    parsed.params = params
    if params and parsed.key is not None:
        parsed.key = (*parsed.key, orjson.dumps(params, option=orjson.OPT_SORT_KEYS))
    return parsed


# -- tables: the JSON formats as columns --------------------------------------------------------


@dataclass
class _Table:
    """A request's values by column: names (None: positional) and one list per column."""

    names: list[Any] | None
    columns: list[list[Any]]
    rows: int


def _rows_table(rows: Any, where: str, names: list[Any] | None) -> _Table:
    if not isinstance(rows, list):
        raise RequestError(f"{where} must be a list of rows; got {describe(rows)}", field=where)
    if not all(type(row) is list for row in rows):
        bad = next(i for i, row in enumerate(rows) if type(row) is not list)
        raise RequestError(f"{where}[{bad}] must be a list of values (a row); got {describe(rows[bad])}", field=where)
    width = len(names) if names is not None else (len(rows[0]) if rows else 0)
    if any(len(row) != width for row in rows):
        bad = next(i for i, row in enumerate(rows) if len(row) != width)
        of = f"the {width} columns given" if names is not None else f"row 0's {width}"
        raise RequestError(f"{where}[{bad}] has {len(rows[bad])} values, not {of}", field=where)
    if len(rows) == 1:  # the common case, without zip's tuples
        return _Table(names, [[value] for value in rows[0]], 1)
    columns = [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    return _Table(names, columns, len(rows))


def _records_table(records: list[Any], where: str) -> _Table:
    if not all(type(record) is dict for record in records):
        bad = next(i for i, r in enumerate(records) if type(r) is not dict)
        raise RequestError(
            f"{where}[{bad}] must be an object of column names to values; got {describe(records[bad])}", field=where
        )
    names: dict[Any, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = [[record.get(name, _MISSING) for record in records] for name in names]
    return _Table(list(names), columns, len(records))


def _columnar_table(value: dict[str, Any], where: str) -> _Table:
    lengths = {len(v) for v in value.values() if type(v) is list}
    if not lengths:  # every value a scalar: one row
        return _Table(list(value), [[v] for v in value.values()], 1)
    if len(lengths) > 1 or any(type(v) is not list for v in value.values()):
        shown = ", ".join(f"{k!r}: {len(v) if type(v) is list else 'a scalar'}" for k, v in value.items())
        raise RequestError(f"the columns of {where} must all be lists of the same length; got {shown}", field=where)
    return _Table(list(value), list(value.values()), lengths.pop())


def _table(form: str, value: Any, spec: InputSpec) -> _Table:
    """Any of the four JSON formats as a table of columns (at least one row)."""
    table = _any_table(form, value, spec)
    if table.rows == 0:
        raise RequestError(f"{form} holds no rows: there is nothing to predict", field=form)
    return table


def _any_table(form: str, value: Any, spec: InputSpec) -> _Table:
    if form == DATAFRAME_SPLIT:
        if not isinstance(value, dict):
            raise RequestError(
                f"{DATAFRAME_SPLIT} must be an object with 'columns' and 'data' (pandas' split orient); "
                f"got {describe(value)}",
                field=DATAFRAME_SPLIT,
            )
        unknown = [k for k in value if k not in ("columns", "data", "index")]
        if unknown:
            raise RequestError(
                f"{DATAFRAME_SPLIT} has unknown field(s) {', '.join(map(repr, unknown))}; "
                "it takes 'columns', 'data' and optionally 'index'",
                field=f"{DATAFRAME_SPLIT}.{unknown[0]}",
            )
        if "data" not in value:
            raise RequestError(f"{DATAFRAME_SPLIT} has no 'data' (the list of rows)", field=f"{DATAFRAME_SPLIT}.data")
        names = value.get("columns")
        if names is not None and (not isinstance(names, list) or not all(type(n) in (str, int) for n in names)):
            raise RequestError(
                f"{DATAFRAME_SPLIT}.columns must be a list of column names; got {describe(names)}",
                field=f"{DATAFRAME_SPLIT}.columns",
            )
        if names is not None and len(set(names)) != len(names):
            raise RequestError(
                f"{DATAFRAME_SPLIT}.columns names a column twice: {names}", field=f"{DATAFRAME_SPLIT}.columns"
            )
        return _rows_table(value["data"], f"{DATAFRAME_SPLIT}.data", names)
    if form == DATAFRAME_RECORDS:
        if not isinstance(value, list):
            raise RequestError(
                f"{DATAFRAME_RECORDS} must be a list of objects (one per row); got {describe(value)}",
                field=DATAFRAME_RECORDS,
            )
        return _records_table(value, DATAFRAME_RECORDS)
    # instances / inputs: TF-serving style, row lists, records, columns, or one column's values
    if isinstance(value, dict):
        return _columnar_table(value, form)
    if not isinstance(value, list):
        raise RequestError(f"{form} must be a list of rows or an object of columns; got {describe(value)}", field=form)
    if value and all(type(item) is dict for item in value):
        return _records_table(value, form)
    if value and all(type(item) is list for item in value):
        return _rows_table(value, form, None)
    if not value:
        return _Table(None, [], 0)
    if any(type(item) in (dict, list) for item in value):
        raise RequestError(f"{form} mixes rows, objects and plain values; send one kind", field=form)
    if spec.kind == "columns" and len(spec.columns) != 1:
        raise RequestError(
            f"{form} is a flat list of values, but the model's signature has {len(spec.columns)} columns "
            f"({spec.expected_columns()}); send a list of rows or an object of columns",
            field=form,
        )
    return _Table(None, [list(value)], len(value))


# -- column-based signatures ----------------------------------------------------------------------


def _column_input(form: str, value: Any, spec: InputSpec) -> ModelInput:
    table = _table(form, value, spec)
    return checked_columns(table, spec, form)


def checked_columns(table: _Table, spec: InputSpec, where: str) -> ModelInput:
    """The table's columns checked against a column-based signature."""
    by_name: dict[Any, list[Any]]
    if table.names is None or not spec.named:
        # positional: rows carry the signature's columns in order (trailing optional ones may be left out)
        width = len(table.columns)
        least = max((i + 1 for i, c in enumerate(spec.columns) if c.required), default=0)
        if not least <= width <= len(spec.columns):
            expected = f"{len(spec.columns)}" if least == len(spec.columns) else f"{least} to {len(spec.columns)}"
            raise RequestError(
                f"{where} has rows of {width} values, but the model's signature has {expected} "
                f"columns ({spec.expected_columns()})",
                field=where,
            )
        by_name = {column.name: values for column, values in zip(spec.columns, table.columns, strict=False)}
    else:
        by_name = dict(zip(table.names, table.columns, strict=True))
        missing = [c.name for c in spec.required if c.name not in by_name]
        if missing:
            raise RequestError(
                f"missing column(s) {', '.join(repr(m) for m in missing)} required by the model's signature "
                f"(it expects: {spec.expected_columns()})",
                field=str(missing[0]),
            )
    data: dict[Any, list[Any]] = {}
    present: list[Any] = []
    for column in spec.columns:
        if column.name not in by_name:
            continue
        data[column.name] = _convert(column, by_name[column.name], where)
        if not column.required:
            present.append(column.name)
    return ModelInput("columns", data, table.rows, ("columns", tuple(present)))


def _convert(column: Column, values: list[Any], where: str) -> list[Any]:
    if any(v is _MISSING for v in values):
        row = next(i for i, v in enumerate(values) if v is _MISSING)
        if column.required:
            raise RequestError(
                f"{where}[{row}] has no {column.label}, which the model's signature requires", field=str(column.name)
            )
        values = [None if v is _MISSING else v for v in values]
    try:
        return column.convert(values)
    except ValueProblem as problem:
        raise RequestError(
            f"{column.label}, row {problem.row}: {problem.problem}; the model's signature requires "
            f"{expected_json_type(column)}",
            field=str(column.name),
        )


# -- tensor-based signatures ----------------------------------------------------------------------

_KINDS = {"f": "numbers", "i": "integers", "u": "integers", "b": "booleans", "U": "strings", "S": "bytes"}
_ACCEPTS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b", "U": "U", "S": "SU", "O": "OUfiub"}


def as_tensor(values: Any, tensor: Tensor, where: str) -> np.ndarray:
    """``values`` as an array of the tensor's dtype and shape, or a ``RequestError`` saying why not."""
    try:
        array = np.asarray(values)
    except ValueError:
        raise RequestError(
            f"{where} is ragged: its nested lists differ in length ({tensor.label} has shape {_shape(tensor.shape)})",
            field=where,
        )
    expected = tensor.dtype.kind
    if array.dtype.kind == "O" and expected != "O":
        raise RequestError(
            f"{where} mixes types or nests unevenly; {tensor.label} holds {tensor.dtype} values", field=where
        )
    if array.size and array.dtype.kind not in _ACCEPTS.get(expected, expected):
        raise RequestError(
            f"{where} holds {_KINDS.get(array.dtype.kind, str(array.dtype))}, but {tensor.label} holds "
            f"{tensor.dtype} values",
            field=where,
        )
    if expected in "iu" and array.dtype.kind == "f":  # pragma: no cover - _ACCEPTS refuses floats for ints
        raise RequestError(f"{where} holds non-integers; {tensor.label} holds {tensor.dtype}", field=where)
    if len(array.shape) != len(tensor.shape) or any(
        want != -1 and got != want for got, want in zip(array.shape, tensor.shape, strict=False)
    ):
        raise RequestError(
            f"{where} has shape {_shape(array.shape)}, but {tensor.label} has shape {_shape(tensor.shape)} "
            "(-1: any size)",
            field=where,
            hint="a single instance must still be wrapped in a list"
            if len(array.shape) == len(tensor.shape) - 1
            else None,
        )
    return array.astype(tensor.dtype, copy=False)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_input(form: str, value: Any, spec: InputSpec) -> ModelInput:
    tensors = spec.tensors
    records = isinstance(value, list) and bool(value) and all(type(item) is dict for item in value)
    if len(tensors) == 1 and not (records and form == INSTANCES and tensors[0].name is not None):
        tensor = tensors[0]
        if form == DATAFRAME_SPLIT:
            table = _table(form, value, spec)
            raw: Any = [list(row) for row in zip(*table.columns, strict=True)]
        elif form == DATAFRAME_RECORDS:
            table = _table(form, value, spec)
            raw = [list(row) for row in zip(*table.columns, strict=True)]
        elif isinstance(value, dict) and tensor.name is not None and set(value) == {tensor.name}:
            raw = value[tensor.name]
        elif isinstance(value, dict):
            raise RequestError(
                f"{form} must be a (nested) list: the model takes one unnamed tensor of shape {_shape(tensor.shape)}",
                field=form,
            )
        else:
            raw = value
        array = as_tensor(raw, tensor, form)
        rows = int(array.shape[0]) if tensor.batch_dim else 0
        key = ("tensor", array.shape[1:]) if tensor.batch_dim else None
        return ModelInput("tensor", array, rows, key)
    # named tensors: {"inputs": {name: nested list}} or {"instances": [{name: value}, ...]}
    if form == INSTANCES and isinstance(value, list):
        if not all(type(item) is dict for item in value):
            raise RequestError(
                f"{form} must be a list of objects, one per instance, keyed by tensor name "
                f"({', '.join(str(t.name) for t in tensors)})",
                field=form,
            )
        columns: dict[str, Any] = {}
        for tensor in tensors:
            if value and any(str(tensor.name) not in item for item in value):
                row = next(i for i, item in enumerate(value) if str(tensor.name) not in item)
                raise RequestError(f"{form}[{row}] has no {tensor.label}", field=str(tensor.name))
            columns[str(tensor.name)] = [item[str(tensor.name)] for item in value]
        value = columns
    if not isinstance(value, dict):
        raise RequestError(
            f"{form} must be an object of tensor name to values: the model takes tensors "
            f"{', '.join(repr(t.name) for t in tensors)}",
            field=form,
        )
    missing = [t.name for t in tensors if t.name not in value]
    if missing:
        raise RequestError(
            f"missing tensor(s) {', '.join(repr(m) for m in missing)} required by the model's signature",
            field=str(missing[0]),
        )
    arrays = {str(t.name): as_tensor(value[t.name], t, f"{form}.{t.name}") for t in tensors}
    if all(t.batch_dim for t in tensors):
        sizes = {a.shape[0] for a in arrays.values()}
        if len(sizes) == 1:
            key = ("tensors", tuple((name, a.shape[1:]) for name, a in arrays.items()))
            return ModelInput("tensors", arrays, sizes.pop(), key)
    return ModelInput("tensors", arrays, 0, None)


# -- no signature: parsed as MLflow parses it -----------------------------------------------------


def _unchecked_input(form: str, value: Any) -> ModelInput:
    spec = InputSpec("any")
    if form in (DATAFRAME_SPLIT, DATAFRAME_RECORDS) or (
        isinstance(value, list) and value and all(type(v) is dict for v in value)
    ):
        table = _table(form, value, spec)
        names = table.names if table.names is not None else list(range(len(table.columns)))
        if any(v is _MISSING for col in table.columns for v in col):
            table.columns = [[None if v is _MISSING else v for v in col] for col in table.columns]
        return ModelInput("frame", dict(zip(names, table.columns, strict=True)), table.rows, ("frame", tuple(names)))
    if isinstance(value, dict):
        arrays = {}
        for name, column in value.items():
            try:
                arrays[name] = np.asarray(column)
            except ValueError:
                raise RequestError(
                    f"{form}.{name} is ragged: its nested lists differ in length", field=f"{form}.{name}"
                )
        return ModelInput("raw", arrays, 0, None)
    try:
        array = np.asarray(value)
    except ValueError:
        raise RequestError(f"{form} is ragged: its nested lists differ in length", field=form)
    if array.ndim == 0:
        return ModelInput("raw", array, 0, None)
    return ModelInput("tensor", array, int(array.shape[0]), ("array", array.dtype.str, array.shape[1:]))


# -- CSV ------------------------------------------------------------------------------------------

_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def _csv_cell(text: str, column: Column) -> Any:
    """One CSV cell as the JSON value a client would have sent for ``column`` (empty: null)."""
    kind = column.type_name
    if text == "" and kind != "string":
        return None
    if kind in ("double", "float"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind in ("long", "integer"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "boolean":
        low = text.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else text
    return text


def parse_csv(body: bytes, spec: InputSpec) -> ModelInput:
    """A CSV body (header row first, as ``DataFrame.to_csv(index=False)`` writes it)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"the CSV body is not valid UTF-8: {exc}")
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise RequestError(f"the body is not valid CSV: {exc}")
    if not rows:
        raise RequestError("the CSV body is empty; send a header row and one row per input")
    header, data = rows[0], rows[1:]
    if not data:  # as an empty JSON table is refused: nothing to predict, whatever the model would do
        raise RequestError(
            "the CSV body has a header row but no data rows: there is nothing to predict; send one row per input "
            "after the header",
            field="csv",
        )
    bad = next((i for i, row in enumerate(data) if len(row) != len(header)), None)
    if bad is not None:
        raise RequestError(
            f"CSV row {bad + 1} has {len(data[bad])} values, but the header names {len(header)} columns", field="csv"
        )
    columns = [list(col) for col in zip(*data, strict=True)]
    if spec.kind == "columns":
        by_name = {c.name: c for c in spec.columns}
        positional = not spec.named
        typed = []
        for i, (name, values) in enumerate(zip(header, columns, strict=True)):
            column = spec.columns[i] if positional and i < len(spec.columns) else by_name.get(name)
            typed.append([_csv_cell(v, column) for v in values] if column is not None else values)
        return checked_columns(_Table(None if positional else header, typed, len(data)), spec, "csv")
    if spec.kind == "tensors":
        tensor = spec.tensors[0]
        if len(spec.tensors) != 1:
            raise RequestError(
                "CSV cannot carry several named tensors; send JSON 'inputs'",
                status=415,
                error_code="UNSUPPORTED_MEDIA_TYPE",
                field="Content-Type",
            )
        try:
            array = np.asarray(data, dtype=str).astype(tensor.dtype)
        except ValueError as exc:
            raise RequestError(f"CSV values do not fit {tensor.label} ({tensor.dtype}): {exc}", field="csv")
        checked = as_tensor(array, tensor, "csv")
        key = ("tensor", checked.shape[1:]) if tensor.batch_dim else None
        return ModelInput("tensor", checked, int(checked.shape[0]) if tensor.batch_dim else 0, key)
    import pandas as pd

    frame = pd.read_csv(io.StringIO(text))
    data_by_name = {name: frame[name].tolist() for name in frame.columns}
    return ModelInput("frame", data_by_name, len(frame), ("frame", tuple(frame.columns)))
