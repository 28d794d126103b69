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
import orjson
import pandas as pd
import pytest
from conftest import run_python
from fastapi.testclient import TestClient
from mlflow.models import infer_signature
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mltrack
from mltrack.errors import InvalidInputError
from mltrack.models.registry import ModelNotFoundError
from mltrack.serving import ServedModel, create_app, create_lazy_app, load_served_model
from mltrack.storage.store import get_store

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


@pytest.fixture
def mlflow_scoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """MLflow's own scoring server (``mlflow models serve``'s app), in-process, for a model folder."""
    from mlflow.pyfunc import scoring_server

    # init() marks the process as a serving environment; the mark goes when the test ends
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    clients: list[TestClient] = []

    def start(path: Path) -> TestClient:
        client = TestClient(scoring_server.init(mlflow.pyfunc.load_model(str(path))))
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()


def same_answer_as_mlflow(ours: httpx.Response, theirs: httpx.Response) -> None:
    """The same status and error code as MLflow's scoring server (MLTrack's message is its own)."""
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text[:300])
    assert ours.json()["error_code"] == theirs.json()["error_code"], (ours.text, theirs.text[:300])


def test_a_model_error_is_a_400_as_mlflow_answers_and_the_next_request_is_answered(
    doubler: tuple[ServedModel, Path], mlflow_scoring: Any
) -> None:
    served, _ = doubler
    with TestClient(create_app(dataclasses.replace(served, batchable=False))) as client:
        response = client.post("/invocations", json={"inputs": {"x": [-1.0]}})
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "BAD_REQUEST",
            "message": "the model failed on this input: ValueError: negative x in 1 rows",
        }
        same_answer_as_mlflow(
            response, mlflow_scoring(served.path).post("/invocations", json={"inputs": {"x": [-1.0]}})
        )
        assert client.post("/invocations", json={"inputs": {"x": [2.5]}}).json() == {"predictions": [5.0]}


def test_a_csv_body_with_only_a_header_row_is_a_400_as_mlflow_answers(
    client: TestClient, churn: ServedModel, mlflow_scoring: Any
) -> None:
    header_only = {"content": ",".join(FEATURES).encode() + b"\n", "headers": {"Content-Type": "text/csv"}}
    response = client.post("/invocations", **header_only)
    assert response.status_code == 400 and response.json()["error_code"] == "BAD_REQUEST"
    assert "header row but no data rows" in response.json()["message"]
    same_answer_as_mlflow(response, mlflow_scoring(churn.path).post("/invocations", **header_only))


def test_version_answers_the_mlflow_version_as_mlflows_server_does(
    client: TestClient, churn: ServedModel, mlflow_scoring: Any
) -> None:
    ours = client.get("/version")
    theirs = mlflow_scoring(churn.path).get("/version")
    assert ours.status_code == 200 and ours.text == mlflow.__version__
    assert (ours.text, ours.headers["content-type"]) == (theirs.text, theirs.headers["content-type"])


class Scaled(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """x times the ``scale`` param (a PythonModel with a params schema)."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input["x"].to_numpy() * (params or {}).get("scale", 1.0)


def test_params_are_passed_and_mlflows_param_errors_keep_mlflows_status_and_code(
    sqlite_uri: str, mlflow_scoring: Any
) -> None:
    example = pd.DataFrame({"x": [1.0]})
    signature = infer_signature(example, np.array([1.0]), params={"scale": 1.0})
    served = log_python(Scaled(), "scaled", signature=signature)
    with TestClient(create_app(served)) as client:
        assert client.post("/invocations", json={"inputs": {"x": [2.0]}}).json() == {"predictions": [2.0]}
        answer = client.post("/invocations", json={"inputs": {"x": [2.0]}, "params": {"scale": 3.0}})
        assert answer.json() == {"predictions": [6.0]}
        body = {"inputs": {"x": [2.0]}, "params": {"scale": "big"}}
        bad = client.post("/invocations", json=body)
        assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "scale" in bad.json()["message"]
        same_answer_as_mlflow(bad, mlflow_scoring(served.path).post("/invocations", json=body))


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


QUOTED = "o'brien's \"churn\" model"


def test_the_registry_lookup_finds_versions_latest_and_aliases_itself(
    tracking_uri: str, pipeline: tuple[Any, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite is read directly and an MLflow server asked over REST; MLflow's client (the one
    seam faked here) must not be needed, even for a name with quotes in it."""
    model, frame = pipeline
    for _ in range(3):
        with mltrack.start_run():
            mltrack.log_model(model, "model", input_example=frame.head(2), registered_model_name="churn")
    mltrack.set_alias("churn", "champion", 1)
    client = get_store().client
    client.delete_model_version("churn", "3")  # latest is the newest version not deleted
    first = client.get_model_version("churn", "1")
    client.create_registered_model(QUOTED)  # MLflow takes names MLTrack's own API refuses
    client.create_model_version(QUOTED, source=first.source, run_id=first.run_id)
    client.set_registered_model_alias(QUOTED, "prod", "1")
    sample, expected = rows(pipeline, 2)
    references: list[tuple[str, Any, str, str]] = [
        ("churn", 1, "churn", "1"),
        ("churn", "2", "churn", "2"),
        ("churn", "latest", "churn", "2"),
        ("churn", "@champion", "churn", "1"),
        ("churn", "champion", "churn", "1"),
        ("models:/churn/2", "latest", "churn", "2"),
        ("models:/churn/latest", "latest", "churn", "2"),
        ("models:/churn@champion", "latest", "churn", "1"),
        (QUOTED, 1, QUOTED, "1"),
        (QUOTED, "latest", QUOTED, "1"),
        (QUOTED, "@prod", QUOTED, "1"),
        (f"models:/{QUOTED}@prod", "latest", QUOTED, "1"),
    ]
    with monkeypatch.context() as patch:
        patch.setattr("mltrack.models.registry.resolve_version", _refuse_mlflows_client)
        for reference, version, name, number in references:
            served = load_served_model(reference, version)
            assert (served.name, served.version) == (name, number), (reference, version)
            assert served.predictor.predict(sample).tolist() == expected, (reference, version)
    # MLTrack's model API finds the same files in the cache, and keeps them
    record = load_served_model("churn", 1).path / "mltrack-model.json"
    written = record.stat().st_mtime_ns
    assert mltrack.load_model("churn", 1).predict(sample).tolist() == expected
    assert record.stat().st_mtime_ns == written
    # a fresh process, with an empty model cache, finds and fetches a version without importing MLflow
    code = (
        "import sys; from mltrack.serving.loading import locate_model; "
        "found = locate_model('models:/churn@champion'); "
        "print(found.version, (found.path / 'MLmodel').is_file(), 'mlflow' in sys.modules)"
    )
    result = run_python(code, env={"MLTRACK_DATA_DIR": str(tmp_path / "fresh")})
    assert result.stdout.split() == ["1", "True", "False"], result.stderr


def _refuse_mlflows_client(name: str, version: Any = "latest") -> Any:
    raise AssertionError(f"MLflow's client was asked for {name!r} version {version!r}")


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
    assert [a.status_code for a in answers] == [200, 200, 400, 200]
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


# -- limits ----------------------------------------------------------------------------------------


class Passthrough:
    """A do-nothing ASGI middleware: with one, the scoring routes go through FastAPI's routing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("middleware", [False, True], ids=["bare", "with-middleware"])
def test_a_body_over_the_limit_is_a_413_with_or_without_content_length(
    client: TestClient, churn: ServedModel, middleware: bool
) -> None:
    app = create_app(churn, max_body_size="1KiB")
    if middleware:
        app.add_middleware(Passthrough)
    body = orjson.dumps({"inputs": {name: [0.5] * 100 for name in FEATURES}})
    assert len(body) > 1024
    with TestClient(app) as small:
        for route in ("/invocations", "/predict"):
            declared = small.post(route, content=body, headers={"Content-Type": "application/json"})
            chunked = small.post(
                route, content=iter([body[:600], body[600:]]), headers={"Content-Type": "application/json"}
            )
            for response in (declared, chunked):
                assert response.status_code == 413
                assert response.headers["connection"] == "close"
                assert response.json()["error_code"] == "REQUEST_TOO_LARGE"
                assert "larger than this server's limit of 1.0 KiB" in response.json()["message"]
                assert "--max-body-size" in response.json()["message"]
            assert f"({len(body):,} bytes)" in declared.json()["message"]
        assert small.post("/invocations", json={"inputs": {name: [0.5] for name in FEATURES}}).status_code == 200
    # the default limit takes the same body
    assert client.post("/invocations", content=body, headers={"Content-Type": "application/json"}).status_code == 200


def asgi_post(app: Any, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]) -> tuple[int, dict[str, Any], int]:
    """POST /invocations to ``app`` straight through ASGI; (status, JSON body, chunks the app read)."""
    read = 0
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = orjson.loads(message["body"])

    scope = {"type": "http", "method": "POST", "path": "/invocations", "headers": headers, "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"], read


def test_an_oversize_body_is_refused_without_being_read_whole(churn: ServedModel) -> None:
    app = create_app(churn, max_body_size="1MiB")
    megabyte = b"x" * (1024 * 1024 // 4)
    endless = iter(lambda: megabyte, None)  # a body that never ends
    # chunked (no Content-Length): cut off at the first chunk past the limit
    status, body, read = asgi_post(app, [(b"content-type", b"application/json")], endless)
    assert (status, body["error_code"], read) == (413, "REQUEST_TOO_LARGE", 5)
    # a Content-Length over the limit: refused before any of the body is read
    headers = [(b"content-type", b"application/json"), (b"content-length", str(10**10).encode())]
    status, body, read = asgi_post(app, headers, endless)
    assert (status, read) == (413, 0) and "(10,000,000,000 bytes)" in body["message"]


class Held:
    """Doubles x, each call held until the file ``release`` exists (announced by a file in ``started``)."""

    def __init__(self, started: str, release: str) -> None:
        self.started = started
        self.release = release

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        Path(self.started, f"{time.monotonic_ns()}").touch()
        deadline = time.monotonic() + 60
        while not Path(self.release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return frame["x"].to_numpy() * 2


@pytest.mark.parametrize("middleware", [False, True], ids=["bare", "with-middleware"])
def test_requests_beyond_the_concurrency_limit_get_a_503_at_once(
    sqlite_uri: str, tmp_path: Path, middleware: bool
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    release.touch()  # not while signature inference calls it
    served = log_python(Held(str(started), str(release)), "held", input_example=pd.DataFrame({"x": [1.0]}))
    release.unlink()
    app = create_app(served, max_concurrency=2)
    if middleware:
        app.add_middleware(Passthrough)

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve", timeout=60) as http:
            held = [asyncio.create_task(http.post("/invocations", json={"inputs": {"x": [x]}})) for x in (1.0, 2.0)]
            deadline = time.monotonic() + 30
            while len(list(started.iterdir())) < 2:  # both are inside the model now
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            refused = await http.post("/predict", json={"inputs": {"x": [3.0]}})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
            assert "limit of 2 concurrent requests" in refused.json()["message"]
            assert (await http.get("/ping")).status_code == 200  # health checks are not turned away
            release.touch()
            assert [(await task).json() for task in held] == [{"predictions": [2.0]}, {"predictions": [4.0]}]
            again = await http.post("/invocations", json={"inputs": {"x": [3.0]}})
            assert again.json() == {"predictions": [6.0]}

    asyncio.run(main())
    assert app.serving.in_flight == 0


def test_limits_come_from_the_environment_and_bad_ones_say_where(
    churn: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRACK_SERVE_MAX_BODY_SIZE", "2KB")
    monkeypatch.setenv("MLTRACK_SERVE_MAX_CONCURRENCY", "7")
    app = create_app(churn)
    assert (app.serving.max_body_size, app.serving.max_concurrency) == (2000, 7)
    assert create_app(churn, max_concurrency=3).serving.max_concurrency == 3  # an argument wins
    monkeypatch.setenv("MLTRACK_SERVE_MAX_CONCURRENCY", "many")
    with pytest.raises(InvalidInputError, match=r"max_concurrency.*from MLTRACK_SERVE_MAX_CONCURRENCY") as caught:
        create_app(churn)
    assert "unset the environment variable MLTRACK_SERVE_MAX_CONCURRENCY" in str(caught.value)
    with pytest.raises(InvalidInputError, match="max_body_size"):
        create_app(churn, max_body_size=0, max_concurrency=1)
