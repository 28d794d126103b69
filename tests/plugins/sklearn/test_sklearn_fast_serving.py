"""Serving a scikit-learn model without MLflow: the same answers as MLflow's pyfunc path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from starlette.testclient import TestClient

from mltrack.serving.app import create_app
from mltrack.serving.loading import ModelLocation, load_located
from mltrack_sklearn import fast
from mltrack_sklearn.flavour import SklearnFlavour

IRIS = load_iris(as_frame=True)
X: pd.DataFrame = IRIS.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
Y: pd.Series = IRIS.target
COLUMNS = list(X.columns)


def saved(tmp_path: Path, model: Any, example: pd.DataFrame, name: str = "model") -> Path:
    path = tmp_path / name
    flavour = SklearnFlavour()
    flavour.save(
        model,
        path,
        input_example=example,
        pip_requirements=flavour.requirements(model),
        metadata={"mltrack_flavour": "sklearn"},
    )
    return path


@pytest.fixture(scope="module")
def skops_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(X, Y)
    return saved(tmp_path_factory.mktemp("skops"), model, X.head(3))


@pytest.fixture(scope="module")
def cloudpickle_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = Pipeline([("double", FunctionTransformer(lambda frame: frame * 2)), ("reg", LinearRegression())])
    return saved(tmp_path_factory.mktemp("cloudpickle"), model.fit(X, Y.astype(float)), X.head(3))


def slow(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The model served through MLflow's pyfunc loader (the fast loader declines)."""
    with monkeypatch.context() as patch:
        patch.setattr(SklearnFlavour, "load_fast_predictor", lambda self, path, mlmodel: None)
        return load_located(ModelLocation(path))


def test_the_sklearn_formats_load_fast(skops_model: Path, cloudpickle_model: Path) -> None:
    assert (
        yaml.safe_load((skops_model / "MLmodel").read_text())["flavors"]["sklearn"]["serialization_format"] == "skops"
    )
    assert (
        yaml.safe_load((cloudpickle_model / "MLmodel").read_text())["flavors"]["sklearn"]["serialization_format"]
        == "cloudpickle"
    )
    for path in (skops_model, cloudpickle_model):
        assert isinstance(load_located(ModelLocation(path)).predictor, fast.SklearnPredictor)


@pytest.mark.parametrize("which", ["skops_model", "cloudpickle_model"])
def test_the_fast_path_answers_as_mlflow_pyfunc_and_the_mlflow_path(
    which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    path: Path = request.getfixturevalue(which)
    rows = X.sample(7, random_state=3)
    expected = mlflow.pyfunc.load_model(str(path)).predict(rows)
    fast_client = TestClient(create_app(load_located(ModelLocation(path))))
    slow_client = TestClient(create_app(slow(path, monkeypatch)))
    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": rows.values.tolist()}},
        {"dataframe_records": rows.to_dict(orient="records")},
        {
            "dataframe_split": {
                "columns": [*COLUMNS[::-1], "extra"],
                "data": [[*r[::-1], 1] for r in rows.values.tolist()],
            }
        },
        {"dataframe_split": {"columns": COLUMNS, "data": [[1, 2, 3, 4]]}},  # integers for double columns
        {"dataframe_split": {"columns": COLUMNS[:3], "data": [[1.0, 2.0, 3.0]]}},  # a missing column
        {"dataframe_split": {"columns": COLUMNS, "data": [["a", 2.0, 3.0, 4.0]]}},  # a wrong type
        {"dataframe_split": {"columns": COLUMNS, "data": [[None, 2.0, 3.0, 4.0]]}},  # null in a required column
        {"instances": rows.to_dict(orient="records")},
        {"dataframe_split": {"columns": COLUMNS, "data": rows.values.tolist()}, "params": {"unknown": 1}},
    ]
    for body in bodies:
        got, want = fast_client.post("/invocations", json=body), slow_client.post("/invocations", json=body)
        assert (got.status_code, got.json()) == (want.status_code, want.json()), body
    first = fast_client.post("/invocations", json=bodies[0]).json()["predictions"]
    np.testing.assert_allclose(first, np.asarray(expected))
    assert fast_client.get("/metadata").json() == slow_client.get("/metadata").json()
    csv = rows.to_csv(index=False).encode()
    got = fast_client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    want = slow_client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert (got.status_code, got.json()) == (want.status_code, want.json())


def test_models_the_fast_path_cannot_serve_identically_go_through_mlflow(
    skops_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlmodel = yaml.safe_load((skops_model / "MLmodel").read_text())
    assert fast.load_fast_predictor(skops_model, mlmodel) is not None
    other = json.loads(json.dumps(mlmodel))
    other["flavors"]["python_function"]["predict_fn"] = "predict_proba"
    assert fast.load_fast_predictor(skops_model, other) is None
    other = json.loads(json.dumps(mlmodel))
    other["flavors"]["sklearn"]["serialization_format"] = "pickle"
    assert fast.load_fast_predictor(skops_model, other) is None
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    assert fast.load_fast_predictor(skops_model, mlmodel) is None
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    # no signature: MLflow's own input handling applies, so MLflow loads it
    unsigned = tmp_path / "unsigned"
    SklearnFlavour().save(LogisticRegression(max_iter=500).fit(X, Y), unsigned, metadata={"mltrack_flavour": "sklearn"})
    assert not isinstance(load_located(ModelLocation(unsigned)).predictor, fast.SklearnPredictor)


def test_a_fast_load_imports_neither_mlflow_nor_torch(skops_model: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from mltrack.serving.loading import ModelLocation, load_located
served = load_located(ModelLocation(Path({str(skops_model)!r})))
print(type(served.predictor).__name__, "mlflow" in sys.modules, "torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SklearnPredictor", "False", "False"]


def test_skops_trusts_the_same_types_when_imported_without_torch() -> None:
    code = """
import json, sys
if sys.argv[1] == "fast":
    from mltrack_sklearn.fast import import_skops_io
    import_skops_io()
from skops.io import _trusted_types as t
names = {k: v for k, v in vars(t).items() if k.endswith("_TYPE_NAMES")}
print(json.dumps(names, sort_keys=True))
"""
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code, way], capture_output=True, text=True, timeout=300, check=True
        ).stdout
        for way in ("plain", "fast")
    ]
    assert json.loads(outputs[0])["SKLEARN_ESTIMATOR_TYPE_NAMES"]
    assert outputs[0] == outputs[1]
