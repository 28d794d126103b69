"""The scoring protocol: every request format parsed and checked against the model's signature.

Pure functions, no server: each bad request must raise a ``RequestError`` whose status
and message name the problem (the field, column, row and what was expected).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema, TensorSpec

from mltrack.serving.inference import combine, failure, split
from mltrack.serving.protocol import ModelInput, RequestError, parse_request
from mltrack.serving.schema import InputSpec, compile_signature

COLUMNS = ["age", "income", "city", "member"]
ROWS = [[31, 52000.5, "Paris", True], [45, 61000.0, "Lyon", False]]


@pytest.fixture(scope="module")
def mixed() -> InputSpec:
    """long, double, string and boolean columns, plus an optional double."""
    schema = Schema(
        [
            ColSpec(DataType.long, "age"),
            ColSpec(DataType.double, "income"),
            ColSpec(DataType.string, "city"),
            ColSpec(DataType.boolean, "member"),
            ColSpec(DataType.double, "score", required=False),
        ]
    )
    return compile_signature(ModelSignature(inputs=schema))


@pytest.fixture(scope="module")
def tensor() -> InputSpec:
    return compile_signature(ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 3))])))


def parse(body: Any, spec: InputSpec, content_type: str = "application/json") -> ModelInput:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_request(raw, content_type, spec)


def frame_of(item: ModelInput, spec: InputSpec) -> pd.DataFrame:
    result = combine([item], spec)
    assert isinstance(result, pd.DataFrame)
    return result


def refused(body: Any, spec: InputSpec, content_type: str = "application/json") -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(body, spec, content_type)
    return caught.value


EXPECTED = pd.DataFrame(
    {
        "age": np.array([31, 45], dtype="int64"),
        "income": [52000.5, 61000.0],
        "city": ["Paris", "Lyon"],
        "member": [True, False],
    }
)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
        {"dataframe_split": {"columns": COLUMNS, "data": ROWS, "index": [7, 8]}},
        {"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
        {"instances": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
        {"instances": ROWS},
        {"inputs": {name: [row[i] for row in ROWS] for i, name in enumerate(COLUMNS)}},
        {"inputs": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]},
    ],
    ids=["split", "split-index", "records", "instances-records", "instances-rows", "inputs-columns", "inputs-records"],
)
def test_every_json_format_gives_the_same_typed_frame(body: dict[str, Any], mixed: InputSpec) -> None:
    item = parse(body, mixed)
    assert item.rows == 2
    frame = frame_of(item, mixed)
    pd.testing.assert_frame_equal(frame[COLUMNS], EXPECTED, check_dtype=False)
    assert frame["age"].dtype == np.int64 and frame["income"].dtype == np.float64 and frame["member"].dtype == bool


def test_csv_with_a_header_gives_the_same_frame(mixed: InputSpec) -> None:
    body = EXPECTED.to_csv(index=False).encode()
    item = parse(body, mixed, "text/csv")
    pd.testing.assert_frame_equal(frame_of(item, mixed)[COLUMNS], EXPECTED, check_dtype=False)
    assert parse(body, mixed, "text/csv; charset=utf-8").rows == 2


def test_a_single_row_as_scalars_and_params_are_accepted(mixed: InputSpec) -> None:
    item = parse({"inputs": {"age": 3, "income": 1.5, "city": "Nice", "member": True}, "params": {"k": 2}}, mixed)
    assert item.rows == 1 and item.params == {"k": 2}
    assert frame_of(item, mixed).loc[0, "city"] == "Nice"


def test_ints_are_accepted_for_doubles_and_integral_floats_for_longs(mixed: InputSpec) -> None:
    item = parse({"dataframe_records": [{"age": 30.0, "income": 5, "city": "x", "member": False}]}, mixed)
    frame = frame_of(item, mixed)
    assert frame.loc[0, "age"] == 30 and frame["age"].dtype == np.int64
    assert frame.loc[0, "income"] == 5.0 and frame["income"].dtype == np.float64


def test_extra_columns_are_ignored_as_mlflow_does(mixed: InputSpec) -> None:
    item = parse({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True, "noise": 9}]}, mixed)
    assert "noise" not in frame_of(item, mixed).columns


def test_optional_columns_may_be_left_out_and_only_batch_with_their_kind(mixed: InputSpec) -> None:
    without = parse({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True}]}, mixed)
    with_score = parse(
        {"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True, "score": None}]}, mixed
    )
    assert "score" not in frame_of(without, mixed).columns
    assert np.isnan(frame_of(with_score, mixed).loc[0, "score"])
    assert without.key != with_score.key


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, ["not valid JSON"]),
        (b"", 400, ["empty"]),
        ([1, 2], 400, ["JSON object", "a list"]),
        ({"rows": []}, 400, ["unknown field", "'rows'"]),
        ({}, 400, ["exactly one of", "none"]),
        ({"inputs": [], "instances": []}, 400, ["exactly one of", "'instances' and 'inputs'"]),
        ({"inputs": {"age": [1]}, "params": [1]}, 400, ["'params'", "JSON object"]),
        ({"dataframe_split": [[1]]}, 400, ["dataframe_split", "'columns' and 'data'"]),
        ({"dataframe_split": {"columns": COLUMNS}}, 400, ["no 'data'"]),
        (
            {"dataframe_split": {"columns": COLUMNS, "data": [ROWS[0][:3]]}},
            400,
            ["dataframe_split.data[0]", "3 values"],
        ),
        ({"dataframe_split": {"columns": COLUMNS, "data": [5]}}, 400, ["dataframe_split.data[0]", "a row"]),
        ({"dataframe_split": {"columns": ["age", "age"], "data": []}}, 400, ["twice"]),
        ({"dataframe_split": {"columns": COLUMNS, "data": ROWS, "orient": 1}}, 400, ["unknown field", "'orient'"]),
        ({"dataframe_records": {"age": 1}}, 400, ["dataframe_records", "list of objects"]),
        ({"dataframe_records": [5]}, 400, ["dataframe_records[0]", "object of column names"]),
        ({"instances": [[1, 2, 3]]}, 400, ["rows of 3 values", "4 to 5 columns"]),
        ({"instances": [1, 2]}, 400, ["flat list", "5 columns"]),
        ({"instances": [[1], {"a": 1}]}, 400, ["mixes"]),
        ({"inputs": {"age": [1, 2], "income": [1.0]}}, 400, ["same length"]),
        ({"inputs": "text"}, 400, ["inputs", "list of rows or an object"]),
        ({"inputs": []}, 400, ["inputs holds no rows"]),
        ({"dataframe_split": {"columns": COLUMNS, "data": []}}, 400, ["dataframe_split holds no rows"]),
        ({"dataframe_records": []}, 400, ["dataframe_records holds no rows"]),
    ],
)
def test_malformed_bodies_are_refused_with_what_is_wrong(
    body: Any, status: int, words: list[str], mixed: InputSpec
) -> None:
    error = refused(body, mixed)
    assert error.status == status
    for word in words:
        assert word in str(error), str(error)


def test_missing_columns_are_named(mixed: InputSpec) -> None:
    error = refused({"dataframe_split": {"columns": ["age", "city"], "data": [[1, "x"]]}}, mixed)
    assert error.status == 400 and error.field == "income"
    assert "missing column(s) 'income', 'member'" in str(error)
    assert "age, income, city, member, score" in str(error)  # what it expects


def test_a_record_without_a_required_column_is_named(mixed: InputSpec) -> None:
    records = [{"age": 1, "income": 2.0, "city": "x", "member": True}, {"age": 1, "income": 2.0, "city": "x"}]
    error = refused({"dataframe_records": records}, mixed)
    assert error.field == "member" and "dataframe_records[1] has no column 'member'" in str(error)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("income", "lots", ["column 'income', row 1", "'lots' (a string) is not a number", "requires a double"]),
        ("income", True, ["column 'income', row 1", "True (a boolean) is not a number"]),
        ("income", None, ["column 'income', row 1", "null"]),
        ("age", 2.5, ["column 'age', row 1", "2.5 (a number) is not an integer (long)"]),
        ("age", 2**63, ["column 'age', row 1", "within the range of a long"]),
        ("age", "3", ["column 'age', row 1", "'3' (a string) is not an integer"]),
        ("city", 5, ["column 'city', row 1", "5 (an integer) is not a string"]),
        ("member", "yes", ["column 'member', row 1", "is not a boolean"]),
    ],
)
def test_wrong_types_name_the_column_row_and_expected_type(
    column: str, value: Any, words: list[str], mixed: InputSpec
) -> None:
    records = [{"age": 1, "income": 2.0, "city": "x", "member": True} for _ in range(2)]
    records[1][column] = value
    error = refused({"dataframe_records": records}, mixed)
    assert error.status == 400 and error.field == column
    for word in words:
        assert word in str(error), str(error)


def test_csv_problems_are_named(mixed: InputSpec) -> None:
    error = refused(b"age,income,city,member\n1,abc,x,true\n", mixed, "text/csv")
    assert "column 'income', row 0" in str(error) and "'abc'" in str(error)
    error = refused(b"age,income,city,member\n1,2.0,x\n", mixed, "text/csv")
    assert "CSV row 1 has 3 values" in str(error)
    error = refused(b"age,city\n1,x\n", mixed, "text/csv")
    assert "missing column(s) 'income', 'member'" in str(error)
    assert "empty" in str(refused(b"\n", mixed, "text/csv"))


@pytest.mark.parametrize("spec_name", ["mixed", "tensor", "none"])
def test_a_csv_body_with_only_a_header_row_is_a_400(spec_name: str, request: pytest.FixtureRequest) -> None:
    spec = compile_signature(None) if spec_name == "none" else request.getfixturevalue(spec_name)
    for body in (b"age,income,city,member\n", b"age,income,city,member\r\n\r\n", b"age,income,city,member"):
        error = refused(body, spec, "text/csv")
        assert error.status == 400 and error.error_code == "BAD_REQUEST" and error.field == "csv"
        assert "header row but no data rows" in str(error)


def test_a_model_error_is_a_400_bad_request_and_mlflows_own_errors_keep_their_status_and_code() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

    answer = failure(ValueError("negative x\nsecond line"))
    assert answer.status == 400
    assert orjson.loads(answer.body) == {
        "error_code": "BAD_REQUEST",
        "message": "the model failed on this input: ValueError: negative x",
    }
    answer = failure(MlflowException("bad scale", error_code=INVALID_PARAMETER_VALUE))
    assert (answer.status, orjson.loads(answer.body)) == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad scale"},
    )
    answer = failure(MlflowException("broken", error_code=INTERNAL_ERROR))
    assert (answer.status, orjson.loads(answer.body)["error_code"]) == (500, "INTERNAL_ERROR")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/json; charset=latin-1"])
def test_unsupported_media_types_get_415(content_type: str, mixed: InputSpec) -> None:
    error = refused({"inputs": {"age": [1]}}, mixed, content_type)
    assert error.status == 415 and error.error_code == "UNSUPPORTED_MEDIA_TYPE"
    assert error.field == "Content-Type"


def test_error_bodies_are_json_with_code_message_and_field(mixed: InputSpec) -> None:
    error = refused({"dataframe_records": [{"age": "x", "income": 1.0, "city": "a", "member": True}]}, mixed)
    assert orjson.loads(error.body()) == {"error_code": "BAD_REQUEST", "message": str(error), "field": "age"}


def test_binary_and_datetime_columns_are_decoded() -> None:
    spec = compile_signature(
        ModelSignature(inputs=Schema([ColSpec(DataType.binary, "blob"), ColSpec(DataType.datetime, "at")]))
    )
    body = {"inputs": {"blob": [base64.b64encode(b"\x00hi").decode()], "at": ["2024-05-01T12:30:00"]}}
    frame = frame_of(parse(body, spec), spec)
    assert frame.loc[0, "blob"] == b"\x00hi" and frame.loc[0, "at"] == pd.Timestamp("2024-05-01T12:30:00")
    assert "not valid base64" in str(refused({"inputs": {"blob": ["%%%"], "at": ["2024-05-01"]}}, spec))
    assert "not an ISO 8601 datetime" in str(refused({"inputs": {"blob": ["AA=="], "at": ["soon"]}}, spec))


def test_array_columns_pass_through_for_mlflow_to_enforce() -> None:
    spec = compile_signature(ModelSignature(inputs=Schema([ColSpec(Array(DataType.double), "xs")])))
    frame = frame_of(parse({"dataframe_records": [{"xs": [1.0, 2.0]}, {"xs": [3.0, 4.0]}]}, spec), spec)
    assert frame.loc[1, "xs"] == [3.0, 4.0]


def test_tensors_take_nested_lists_with_a_checked_dtype_and_shape(tensor: InputSpec) -> None:
    for body in (
        {"inputs": [[1, 2, 3], [4, 5, 6]]},
        {"instances": [[1, 2, 3], [4, 5, 6]]},
        {"dataframe_split": {"data": [[1, 2, 3], [4, 5, 6]]}},
    ):
        item = parse(body, tensor)
        assert item.rows == 2 and item.data.dtype == np.float32 and item.data.shape == (2, 3)
    item = parse(b"a,b,c\n1,2,3\n", tensor, "text/csv")
    assert item.data.tolist() == [[1.0, 2.0, 3.0]]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([[1, 2], [3, 4]], ["shape (2, 2)", "(-1, 3)"]),
        ([1, 2, 3], ["shape (3,)", "(-1, 3)"]),
        ([[1, 2, 3], [4, 5]], ["ragged"]),
        ([["a", "b", "c"]], ["holds strings", "float32"]),
        ([[1, None, 3]], ["mixes types"]),
    ],
)
def test_bad_tensors_are_refused(value: Any, words: list[str], tensor: InputSpec) -> None:
    error = refused({"inputs": value}, tensor)
    assert error.status == 400
    for word in words:
        assert word in str(error), str(error)


def test_named_tensors_take_objects_and_instances() -> None:
    schema = Schema([TensorSpec(np.dtype("int64"), (-1,), "a"), TensorSpec(np.dtype("float64"), (-1, 2), "b")])
    spec = compile_signature(ModelSignature(inputs=schema))
    item = parse({"inputs": {"a": [1, 2], "b": [[1, 2], [3, 4]]}}, spec)
    assert item.rows == 2 and item.data["b"].shape == (2, 2)
    item = parse({"instances": [{"a": 1, "b": [1, 2]}, {"a": 2, "b": [3, 4]}]}, spec)
    assert item.data["a"].tolist() == [1, 2]
    assert "missing tensor(s) 'b'" in str(refused({"inputs": {"a": [1]}}, spec))
    assert "instances[1] has no tensor 'b'" in str(refused({"instances": [{"a": 1, "b": [1, 2]}, {"a": 2}]}, spec))


def test_without_a_signature_inputs_are_parsed_as_mlflow_parses_them() -> None:
    spec = compile_signature(None)
    assert spec.kind == "any"
    item = parse({"dataframe_split": {"columns": ["x", "y"], "data": [[1, "a"]]}}, spec)
    assert frame_of(item, spec).to_dict("records") == [{"x": 1, "y": "a"}]
    item = parse({"instances": [[1.0, 2.0], [3.0, 4.0]]}, spec)
    assert item.kind == "tensor" and item.rows == 2
    item = parse({"inputs": {"x": [1, 2]}}, spec)
    assert item.kind == "raw" and item.key is None


def test_requests_batch_together_only_with_the_same_columns_and_params(mixed: InputSpec) -> None:
    one = parse({"inputs": {"age": [1], "income": [2.0], "city": ["a"], "member": [True]}}, mixed)
    two = parse({"inputs": {"age": [3, 4], "income": [5, 6], "city": ["b", "c"], "member": [False, True]}}, mixed)
    other = parse({"inputs": {"age": [1], "income": [2.0], "city": ["a"], "member": [True]}, "params": {"k": 1}}, mixed)
    assert one.key == two.key != other.key
    frame = combine([one, two], mixed)
    assert frame["age"].tolist() == [1, 3, 4] and frame["city"].tolist() == ["a", "b", "c"]


def test_outputs_split_back_by_rows_or_not_at_all() -> None:
    assert [p.tolist() for p in split(np.arange(6), [1, 3, 2])] == [[0], [1, 2, 3], [4, 5]]
    parts = split(pd.DataFrame({"p": [1, 2, 3]}), [2, 1])
    assert parts is not None and [len(p) for p in parts] == [2, 1]
    assert split([1, 2, 3], [1, 2]) == [[1], [2, 3]]
    assert split({"a": [1, 2], "b": np.array([3, 4])}, [1, 1]) is not None
    assert split(np.arange(4), [1, 2]) is None  # not one output row per input row
    assert split(7, [1, 1]) is None
    assert split({"a": [1, 2], "b": 3}, [1, 1]) is None
