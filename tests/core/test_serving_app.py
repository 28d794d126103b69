"""The serving app over real logged models: scoring formats, errors, readiness, micro-batching.

Models are logged with ``mltrack.log_model`` into a sqlite store and loaded back with
``load_served_model``; the app runs in-process (Starlette's TestClient, or httpx's ASGI
transport for concurrent requests). Batching tests use a large ``max_wait_ms`` and a
batch size equal to the number of concurrent requests, so a batch fires when it is full,
whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mltrack
from mltrack.errors import InvalidInputError
from mltrack.models import ModelNotFoundError
from mltrack.serving import ServedModel, create_app, create_lazy_app, load_served_model

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def pipeline() -> tuple[Any, pd.DataFrame]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    labels = (frame["f0"] + frame["f1"] > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels), frame


@pytest.fixture
def churn(sqlite_uri: str, pipeline: tuple[Any, pd.DataFrame]) -> ServedModel:
    """A scikit-learn pipeline registered as 'churn' v1, loaded for serving."""
    model, frame = pipeline
    with mltrack.start_run():
        mltrack.log_model(model, "model", input_example=frame.head(3), registered_model_name="churn")
    return load_served_model("churn")


@pytest.fixture
def client(churn: ServedModel) -> Iterator[TestClient]:
    with TestClient(create_app(churn)) as test_client:
        yield test_client


def rows(pipeline: tuple[Any, pd.DataFrame], n: int = 3) -> tuple[pd.DataFrame, list[int]]:
    model, frame = pipeline
    sample = frame.tail(n).reset_index(drop=True)
    return sample, model.predict(sample).tolist()


class Doubler:
    """Doubles column x; appends the row count of every call to a file; fails on negative x."""

    def __init__(self, calls: str) -> None:
        self.calls = calls

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        with open(self.calls, "a") as out:
            out.write(f"{len(frame)}\n")
        if (frame["x"] < 0).any():
            raise ValueError(f"negative x in {len(frame)} rows")
        return frame["x"].to_numpy() * 2


def calls_of(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def log_python(model: Any, name: str, **options: Any) -> ServedModel:
    with mltrack.start_run():
        mltrack.log_model(model, "model", registered_model_name=name, **options)
    return load_served_model(name)


@pytest.fixture
def doubler(sqlite_uri: str, tmp_path: Path) -> tuple[ServedModel, Path]:
    """A python-flavour model, made batchable (the python flavour itself is not)."""
    calls = tmp_path / "calls.txt"
    served = log_python(Doubler(str(calls)), "doubler", input_example=pd.DataFrame({"x": [1.0]}))
    calls.unlink()  # signature inference called it once
    return dataclasses.replace(served, batchable=True), calls


def post_all(app: Any, bodies: list[Any]) -> list[httpx.Response]:
    """POST every body to /invocations at once and wait for all answers."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve", timeout=60) as http:
            return list(await asyncio.gather(*(http.post("/invocations", json=body) for body in bodies)))

    return asyncio.run(main())


# -- scoring ---------------------------------------------------------------------------------------


def test_every_input_format_gets_the_models_predictions(client: TestClient, pipeline: Any) -> None:
    sample, expected = rows(pipeline)
    bodies = [
        {"dataframe_split": sample.to_dict(orient="split")},
        {"dataframe_records": sample.to_dict(orient="records")},
        {"instances": sample.to_dict(orient="records")},
        {"inputs": sample.to_dict(orient="list")},
        {"inputs": sample.to_dict(orient="records"), "params": {}},
    ]
    for route in ("/invocations", "/predict"):
        for body in bodies:
            response = client.post(route, json=body)
            assert response.status_code == 200, response.text
            assert response.json() == {"predictions": expected}
            assert response.headers["content-type"] == "application/json"


def test_csv_gets_the_models_predictions(client: TestClient, pipeline: Any) -> None:
    sample, expected = rows(pipeline)
    response = client.post(
        "/invocations", content=sample.to_csv(index=False).encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"inputs": [', 400, ["not valid JSON"]),
        (b'{"rows": []}', 400, ["unknown field", "'rows'"]),
        (b'{"dataframe_split": {"columns": ["f0", "f1", "f2", "f3"], "data": [[1, 2, 3]]}}', 400, ["3 values"]),
        (b'{"dataframe_split": {"columns": ["f0", "f1"], "data": [[1, 2]]}}', 400, ["missing column(s) 'f2', 'f3'"]),
        (b'{"inputs": {"f0": [1], "f1": [2], "f2": [3], "f3": ["x"]}}', 400, ["column 'f3', row 0", "not a number"]),
    ],
)
def test_bad_requests_get_a_400_naming_the_problem_and_the_server_goes_on(
    client: TestClient, pipeline: Any, body: bytes, status: int, words: list[str]
) -> None:
    response = client.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    payload = response.json()
    assert payload["error_code"] == "BAD_REQUEST"
    for word in words:
        assert word in payload["message"], payload
    sample, expected = rows(pipeline, 1)
    assert client.post("/invocations", json={"inputs": sample.to_dict(orient="records")}).json() == {
        "predictions": expected
    }


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/invocations", content=b"f0=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert response.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE" and "text/csv" in response.json()["message"]


def test_unknown_routes_and_methods_get_json_errors(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "/invocations" in response.json()["message"]
    response = client.get("/invocations")
    assert response.status_code == 405 and response.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_ping_health_and_metadata_describe_the_loaded_model(client: TestClient) -> None:
    ping = client.get("/ping")
    assert ping.status_code == 200 and ping.content == b""
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model": {"name": "churn", "version": "1", "flavour": "sklearn"}}
    meta = client.get("/metadata").json()
    assert (meta["name"], meta["version"], meta["flavour"], meta["batchable"]) == ("churn", "1", "sklearn", True)
    assert [c["name"] for c in meta["signature"]["inputs"]] == FEATURES
    assert meta["signature"]["inputs"][0]["type"] == "double"
    assert meta["signature"]["outputs"][0]["type"] == "tensor"


def test_a_model_error_is_a_500_and_the_next_request_is_answered(doubler: tuple[ServedModel, Path]) -> None:
    served, _ = doubler
    with TestClient(create_app(dataclasses.replace(served, batchable=False))) as client:
        response = client.post("/invocations", json={"inputs": {"x": [-1.0]}})
        assert response.status_code == 500
        assert response.json() == {
            "error_code": "INTERNAL_ERROR",
            "message": "the model failed on this input: ValueError: negative x in 1 rows",
        }
        assert client.post("/invocations", json={"inputs": {"x": [2.5]}}).json() == {"predictions": [5.0]}


class Scaled(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """x times the ``scale`` param (a PythonModel with a params schema)."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input["x"].to_numpy() * (params or {}).get("scale", 1.0)


def test_params_are_passed_and_mlflows_param_errors_are_400s(sqlite_uri: str) -> None:
    example = pd.DataFrame({"x": [1.0]})
    signature = infer_signature(example, np.array([1.0]), params={"scale": 1.0})
    served = log_python(Scaled(), "scaled", signature=signature)
    with TestClient(create_app(served)) as client:
        assert client.post("/invocations", json={"inputs": {"x": [2.0]}}).json() == {"predictions": [2.0]}
        answer = client.post("/invocations", json={"inputs": {"x": [2.0]}, "params": {"scale": 3.0}})
        assert answer.json() == {"predictions": [6.0]}
        bad = client.post("/invocations", json={"inputs": {"x": [2.0]}, "params": {"scale": "big"}})
        assert bad.status_code == 400 and bad.json()["error_code"] == "BAD_REQUEST"
        assert "scale" in bad.json()["message"]


def test_a_tensor_signature_takes_nested_lists_and_checks_the_shape(
    sqlite_uri: str, pipeline: tuple[Any, pd.DataFrame]
) -> None:
    fitted, frame = pipeline
    array = frame.to_numpy()
    model = clone(fitted).fit(array, fitted.predict(frame))
    with mltrack.start_run():
        mltrack.log_model(model, "model", input_example=array[:2], registered_model_name="tensors")
    served = load_served_model("tensors")
    expected = model.predict(array[:2]).tolist()
    with TestClient(create_app(served)) as client:
        for body in ({"inputs": array[:2].tolist()}, {"instances": array[:2].tolist()}):
            assert client.post("/invocations", json=body).json() == {"predictions": expected}
        bad = client.post("/invocations", json={"inputs": array[0].tolist()})
        assert bad.status_code == 400 and "shape (4,)" in bad.json()["message"]


# -- loading ---------------------------------------------------------------------------------------


def test_a_model_loads_by_name_version_alias_uri_and_directory(churn: ServedModel, pipeline: Any) -> None:
    mltrack.set_alias("churn", "champion", 1)
    run_uri = mlflow.MlflowClient().get_model_version("churn", "1").source
    sample, expected = rows(pipeline, 2)
    run_id = mlflow.MlflowClient().get_model_version("churn", "1").run_id
    references: list[tuple[str, Any]] = [
        ("churn", 1),
        ("churn", "1"),
        ("churn", "@champion"),
        ("models:/churn/1", "latest"),
        ("models:/churn@champion", "latest"),
        ("models:/churn/latest", "latest"),
        (f"runs:/{run_id}/model", "latest"),
        (str(churn.path), "latest"),
    ]
    for model, version in references:
        served = load_served_model(model, version)
        assert served.flavour == "sklearn" and served.batchable, model
        assert served.predictor.predict(sample).tolist() == expected, model
    assert load_served_model("models:/churn/1").name == "churn"
    # a folder of MLTrack's model cache knows which registry version it is; a copy of the
    # model's files elsewhere (without the cache record) does not
    cached = load_served_model(str(churn.path))
    assert (cached.name, cached.version) == ("churn", "1")
    copy = churn.path.parent / "copy"
    shutil.copytree(churn.path, copy, ignore=shutil.ignore_patterns("mltrack-model.json"))
    assert load_served_model(str(copy)).name is None
    assert run_uri  # the registry points at the run's artifacts


def test_unknown_models_and_bad_references_say_what_is_wrong(churn: ServedModel, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        load_served_model("nope")
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        load_served_model("churn", 9)
    with pytest.raises(InvalidInputError, match="without an MLmodel file"):
        load_served_model(str(tmp_path))
    with pytest.raises(InvalidInputError, match="is not a directory"):
        load_served_model(str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError, match="conflicts with the version"):
        load_served_model("models:/churn/1", 2)


class Gated:
    """Loads only once its gate file exists (to hold a model in the loading state)."""

    def __init__(self, gate: str) -> None:
        self.gate = gate

    def load_context(self, context: Any) -> None:
        deadline = time.monotonic() + 120
        while not Path(self.gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["x"].to_numpy() + 1


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_lazy_app_is_not_ready_until_its_model_has_loaded(sqlite_uri: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    with mltrack.start_run():
        mltrack.log_model(
            Gated(str(gate)), "model", input_example=pd.DataFrame({"x": [1.0]}), registered_model_name="gated"
        )
    gate.unlink()
    with TestClient(create_lazy_app("gated")) as client:
        ping = client.get("/ping")
        assert ping.status_code == 503 and ping.headers["retry-after"] == "1"
        assert client.get("/health").json() == {"status": "loading", "error": None}
        waiting = client.post("/invocations", json={"inputs": {"x": [1.0]}})
        assert waiting.status_code == 503 and "still loading" in waiting.json()["message"]
        gate.touch()
        wait_for(lambda: client.get("/ping").status_code == 200)
        assert client.get("/health").json()["model"] == {"name": "gated", "version": "1", "flavour": "python"}
        assert client.post("/invocations", json={"inputs": {"x": [1.0]}}).json() == {"predictions": [2.0]}


def test_a_lazy_app_whose_model_fails_to_load_says_why(sqlite_uri: str) -> None:
    with TestClient(create_lazy_app("missing-model")) as client:
        wait_for(lambda: client.get("/health").json()["status"] == "failed")
        health = client.get("/health")
        assert health.status_code == 503 and "missing-model" in health.json()["error"]
        assert client.get("/ping").status_code == 503
        answer = client.post("/invocations", json={"inputs": {"x": [1.0]}})
        assert answer.status_code == 503 and answer.json()["error_code"] == "MODEL_LOAD_FAILED"


def test_limits_are_checked(churn: ServedModel) -> None:
    with pytest.raises(InvalidInputError, match="max_batch_size"):
        create_app(churn, max_batch_size=0)
    with pytest.raises(InvalidInputError, match="max_wait_ms"):
        create_app(churn, max_wait_ms=-1)


# -- micro-batching --------------------------------------------------------------------------------


def test_concurrent_requests_share_one_predict_call(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=8, max_wait_ms=20_000)
    answers = post_all(app, [{"inputs": {"x": [float(i)]}} for i in range(8)])
    assert [a.json() for a in answers] == [{"predictions": [2.0 * i]} for i in range(8)]
    assert calls_of(calls) == [8]


def test_a_batch_splits_multi_row_requests_back_in_order(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=6, max_wait_ms=20_000)
    bodies = [
        {"inputs": {"x": [1.0]}},
        {"dataframe_split": {"columns": ["x"], "data": [[2.0], [3.0]]}},
        {"dataframe_records": [{"x": 4.0}, {"x": 5.0}, {"x": 6.0}]},
    ]
    answers = post_all(app, bodies)
    assert [a.json()["predictions"] for a in answers] == [[2.0], [4.0, 6.0], [8.0, 10.0, 12.0]]
    assert calls_of(calls) == [6]


def test_a_request_the_model_fails_on_does_not_fail_its_batch(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=4, max_wait_ms=20_000)
    answers = post_all(app, [{"inputs": {"x": [x]}} for x in (1.0, 2.0, -3.0, 4.0)])
    assert [a.status_code for a in answers] == [200, 200, 500, 200]
    assert [answers[i].json()["predictions"] for i in (0, 1, 3)] == [[2.0], [4.0], [8.0]]
    assert "negative x" in answers[2].json()["message"]
    assert calls_of(calls) == [4, 1, 1, 1, 1]  # the batch, then each request alone


def test_a_request_that_fails_validation_never_joins_a_batch(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=3, max_wait_ms=20_000)
    bodies = [{"inputs": {"x": [1.0]}}, {"inputs": {"x": ["one"]}}, {"inputs": {"x": [2.0]}}, {"inputs": {"x": [3.0]}}]
    answers = post_all(app, bodies)
    assert [a.status_code for a in answers] == [200, 400, 200, 200]
    assert "column 'x', row 0" in answers[1].json()["message"]
    assert calls_of(calls) == [3]


class Summer:
    """Returns one number per call, not one per row: must not be batched."""

    def predict(self, frame: pd.DataFrame) -> list[float]:
        return [float(frame["x"].sum())]


def test_a_model_whose_output_does_not_split_by_rows_is_predicted_per_request(sqlite_uri: str) -> None:
    served = log_python(Summer(), "summer", input_example=pd.DataFrame({"x": [1.0]}))
    app = create_app(dataclasses.replace(served, batchable=True), max_batch_size=4, max_wait_ms=20_000)
    bodies = [{"inputs": {"x": [1.0, 2.0]}}, {"inputs": {"x": [10.0]}}, {"inputs": {"x": [-4.0]}}]
    assert [a.json() for a in post_all(app, bodies)] == [
        {"predictions": [3.0]},
        {"predictions": [10.0]},
        {"predictions": [-4.0]},
    ]
    assert app.serving.scorer.batching is False  # type: ignore[attr-defined]


def test_requests_to_a_model_that_cannot_batch_run_one_by_one(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(dataclasses.replace(served, batchable=False), max_batch_size=8, max_wait_ms=20_000)
    answers = post_all(app, [{"inputs": {"x": [float(i)]}} for i in range(4)])
    assert [a.json() for a in answers] == [{"predictions": [2.0 * i]} for i in range(4)]
    assert calls_of(calls) == [1, 1, 1, 1]


def test_a_lone_request_waits_at_most_max_wait_ms(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=64, max_wait_ms=1)
    assert post_all(app, [{"inputs": {"x": [1.0]}}])[0].json() == {"predictions": [2.0]}
    assert calls_of(calls) == [1]


def test_an_app_serves_again_after_its_lifespan_ended(doubler: tuple[ServedModel, Path]) -> None:
    served, calls = doubler
    app = create_app(served, max_batch_size=64, max_wait_ms=1)
    for x in (1.0, 2.0):  # each TestClient runs the app's startup and shutdown on its own event loop
        with TestClient(app) as client:
            assert client.post("/invocations", json={"inputs": {"x": [x]}}).json() == {"predictions": [2 * x]}
    assert calls_of(calls) == [1, 1]
