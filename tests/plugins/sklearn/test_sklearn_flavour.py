"""The sklearn flavour: conformance, registry round trip, and plain-MLflow loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml
from conftest import run_python
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import mltrack
from mltrack.models.flavours import Flavour
from mltrack.models.registry import flavour_of, infer_flavour
from mltrack.testing.flavours import FlavourConformance
from mltrack_sklearn import plugin
from mltrack_sklearn.flavour import SklearnFlavour

IRIS = load_iris(as_frame=True)
X: pd.DataFrame = IRIS.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
Y: pd.Series = IRIS.target
REGRESSION = pd.DataFrame({"size": [50.0, 70.0, 90.0, 120.0, 65.0], "rooms": [2.0, 3.0, 3.0, 5.0, 2.0]})
PRICE = np.array([150.0, 210.0, 260.0, 350.0, 190.0])


def iris_pipeline() -> Pipeline:
    return Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=500))]).fit(X, Y)


class TestSklearnFlavourLinearRegression(FlavourConformance):
    def flavour(self) -> Flavour:
        return SklearnFlavour()

    def make_model(self) -> Any:
        return LinearRegression().fit(REGRESSION, PRICE)

    def input_example(self) -> Any:
        return REGRESSION.head(3)


class TestSklearnFlavourPipeline(FlavourConformance):
    def flavour(self) -> Flavour:
        return SklearnFlavour()

    def make_model(self) -> Any:
        return iris_pipeline()

    def input_example(self) -> Any:
        return X.head(5)


class TestSklearnFlavourCloudpickleFallback(FlavourConformance):
    """A pipeline with a lambda, which skops cannot store safely."""

    def flavour(self) -> Flavour:
        return SklearnFlavour()

    def make_model(self) -> Any:
        return Pipeline([("double", FunctionTransformer(lambda frame: frame * 2)), ("reg", LinearRegression())]).fit(
            REGRESSION, PRICE
        )

    def input_example(self) -> Any:
        return REGRESSION.head(3)


def saved_with(tmp_path: Path, model: Any) -> Path:
    flavour = SklearnFlavour()
    path = tmp_path / "model"
    flavour.save(model, path, pip_requirements=flavour.requirements(model), metadata={"mltrack_flavour": "sklearn"})
    return path


def test_models_are_stored_in_the_safe_skops_format(tmp_path: Path) -> None:
    path = saved_with(tmp_path, iris_pipeline())
    meta = yaml.safe_load((path / "MLmodel").read_text())
    assert meta["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert meta["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"


def test_a_search_is_stored_with_skops_trusting_scikit_learns_own_types(tmp_path: Path) -> None:
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.5, 1.0]}, cv=3).fit(X, Y)
    path = saved_with(tmp_path, search)
    sklearn_conf = yaml.safe_load((path / "MLmodel").read_text())["flavors"]["sklearn"]
    assert sklearn_conf["serialization_format"] == "skops"
    assert all(name.startswith("sklearn.") for name in sklearn_conf["skops_trusted_types"])
    np.testing.assert_array_equal(SklearnFlavour().load(path).predict(X), search.predict(X))


def test_a_model_skops_cannot_store_falls_back_to_cloudpickle_and_requires_it(tmp_path: Path) -> None:
    model = Pipeline([("f", FunctionTransformer(lambda frame: frame)), ("reg", LinearRegression())])
    path = saved_with(tmp_path, model.fit(REGRESSION, PRICE))
    assert yaml.safe_load((path / "MLmodel").read_text())["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert "cloudpickle==" in (path / "requirements.txt").read_text()


def test_requirements_pin_the_installed_scikit_learn() -> None:
    requirements = SklearnFlavour().requirements(LinearRegression())
    assert requirements[0] == f"scikit-learn=={sklearn.__version__}"


class ThirdPartyRegressor(RegressorMixin, BaseEstimator):
    """An estimator from outside scikit-learn that follows its API."""

    def fit(self, X: Any, y: Any) -> ThirdPartyRegressor:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> Any:
        return np.full(len(X), self.mean_)


@pytest.mark.parametrize(
    "model",
    [
        LinearRegression(),
        Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression())]),
        GridSearchCV(LogisticRegression(), {"C": [1.0]}),
        ThirdPartyRegressor(),
    ],
    ids=["estimator", "pipeline", "search", "third-party-estimator"],
)
def test_infer_flavour_picks_sklearn_for_estimators_and_pipelines(model: Any) -> None:
    assert infer_flavour(model).name == "sklearn"


@pytest.mark.parametrize(
    "obj",
    [StandardScaler(), KFold(), LinearRegression, object()],
    ids=["transformer-without-predict", "splitter", "class", "object"],
)
def test_the_plugin_passes_on_what_it_cannot_save(obj: Any) -> None:
    assert plugin.infer_flavour(obj) is None


def test_log_register_and_load_by_alias_round_trip(sqlite_uri: str) -> None:
    model = iris_pipeline()
    with mltrack.start_run():
        info = mltrack.log_model(model, "model", input_example=X.head())
    assert info.flavour == "sklearn"
    mltrack.register_model(info.model_uri, "iris", alias="champion")
    loaded = mltrack.load_model("iris", "@champion")
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_model_saved_by_plain_mlflow_sklearn_is_read_by_this_flavour(tmp_path: Path) -> None:
    model = LinearRegression().fit(REGRESSION, PRICE)
    mlflow.sklearn.save_model(model, str(tmp_path / "plain"), serialization_format="skops")
    flavour = flavour_of(tmp_path / "plain")
    assert flavour.name == "sklearn"
    np.testing.assert_allclose(flavour.load(tmp_path / "plain").predict(REGRESSION), model.predict(REGRESSION))


def test_plain_mlflow_loads_a_logged_model_without_mltrack_importable(sqlite_uri: str, tmp_path: Path) -> None:
    model = iris_pipeline()
    with mltrack.start_run() as run:
        mltrack.log_model(model, "model", input_example=X.head())
    local = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="model", tracking_uri=sqlite_uri, dst_path=str(tmp_path / "download")
    )
    X.head(10).to_json(tmp_path / "input.json", orient="split")
    code = (
        "import sys\n"
        "sys.modules['mltrack'] = None\n"
        "sys.modules['mltrack_sklearn'] = None\n"
        "import json, mlflow.pyfunc, pandas as pd\n"
        f"frame = pd.read_json({str(tmp_path / 'input.json')!r}, orient='split')\n"
        f"model = mlflow.pyfunc.load_model({local!r})\n"
        "print(json.dumps([int(v) for v in model.predict(frame)]))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mltrack') and sys.modules[m] is not None)))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    predictions, mltrack_modules = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert predictions == [int(v) for v in model.predict(X.head(10))]
    assert mltrack_modules == []


def test_the_mlmodel_names_only_mlflows_loader(sqlite_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run() as run:
        mltrack.log_model(iris_pipeline(), "model", input_example=X.head())
    mlmodel = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="model/MLmodel", tracking_uri=sqlite_uri, dst_path=str(tmp_path)
    )
    text = Path(mlmodel).read_text()
    assert "mltrack_sklearn" not in text
    assert yaml.safe_load(text)["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"


def test_blocking_a_package_in_sys_modules_makes_importing_it_fail() -> None:
    # what makes the test above meaningful: with the entry set to None, any import of
    # mltrack by MLflow's loader would have failed the subprocess
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['mltrack'] = None; import mltrack"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr
