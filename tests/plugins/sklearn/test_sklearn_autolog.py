"""Autologging scikit-learn fits into MLTrack runs (real sqlite store, real scikit-learn)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import joblib
import mlflow
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mltrack
from mltrack_sklearn.autolog import SklearnAutologger

IRIS = load_iris(as_frame=True)
X: pd.DataFrame = IRIS.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
Y: pd.Series = IRIS.target


@pytest.fixture
def autolog(sqlite_uri: str) -> Iterator[None]:
    mltrack.autolog("sklearn")
    yield
    mltrack.autolog("sklearn", disable=True)
    SklearnAutologger().disable()  # the patches are process-wide: none may outlive the test


def pipeline(C: float = 1.0) -> Pipeline:
    return Pipeline([("scaler", StandardScaler()), ("logisticregression", LogisticRegression(C=C, max_iter=500))])


def grid_search() -> GridSearchCV:
    return GridSearchCV(pipeline(), {"logisticregression__C": [0.1, 1.0]}, cv=3)


def fit_in_run(estimator: Any) -> Any:
    with mltrack.start_run() as run:
        estimator.fit(X, Y)
    return mltrack.get_run(run.run_id)


def artifacts(run_id: str, path: str | None = None) -> list[str]:
    return sorted(a.path for a in mlflow.MlflowClient().list_artifacts(run_id, path))


def runs_in_store() -> list[Any]:
    return mlflow.MlflowClient().search_runs(experiment_ids=[e.experiment_id for e in mltrack.list_experiments()])


def test_a_pipeline_fit_logs_the_deep_params(autolog: None) -> None:
    params = fit_in_run(pipeline(C=0.5)).data.params
    assert params["logisticregression__C"] == "0.5"
    assert params["scaler__with_mean"] == "True"
    assert params["scaler"] == "<StandardScaler>"


def test_a_pipeline_fit_logs_the_training_score(autolog: None) -> None:
    model = pipeline()
    run = fit_in_run(model)
    assert run.data.metrics["training_score"] == pytest.approx(model.score(X, Y))


def test_a_pipeline_fit_logs_one_model_not_one_per_step(autolog: None) -> None:
    run = fit_in_run(pipeline())
    assert artifacts(run.info.run_id) == ["model"]
    assert "model/MLmodel" in artifacts(run.info.run_id, "model")


def test_the_logged_model_has_a_signature_and_an_input_example(autolog: None) -> None:
    run = fit_in_run(pipeline())
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.get_input_schema().input_names() == list(X.columns)
    assert "model/input_example.json" in artifacts(run.info.run_id, "model")


def test_a_grid_search_logs_the_best_params_and_best_cv_score(autolog: None) -> None:
    search = grid_search()
    run = fit_in_run(search)
    assert run.data.params["best.logisticregression__C"] == str(search.best_params_["logisticregression__C"])
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)


def test_a_grid_search_logs_exactly_one_model(autolog: None) -> None:
    run = fit_in_run(grid_search())
    assert artifacts(run.info.run_id) == ["model"]
    assert "logisticregression__C" not in run.data.params  # no candidate's fit logged its own params


def test_a_randomized_search_is_logged_like_a_grid_search(autolog: None) -> None:
    search = RandomizedSearchCV(pipeline(), {"logisticregression__C": [0.1, 1.0]}, n_iter=2, cv=3, random_state=0)
    run = fit_in_run(search)
    assert "best.logisticregression__C" in run.data.params
    assert artifacts(run.info.run_id) == ["model"]


def test_a_search_without_refit_logs_its_results_but_no_model(autolog: None) -> None:
    search = GridSearchCV(pipeline(), {"logisticregression__C": [0.1, 1.0]}, cv=3, refit=False)
    run = fit_in_run(search)
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert artifacts(run.info.run_id) == []


def test_candidate_fits_in_joblib_worker_threads_do_not_log(autolog: None) -> None:
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0, 10.0]}, cv=3, n_jobs=2)
    with joblib.parallel_backend("threading", n_jobs=2):
        run = fit_in_run(search)
    assert "C" not in run.data.params  # what a candidate's own fit would have logged
    assert run.data.params["estimator__C"] == "1.0"
    assert artifacts(run.info.run_id) == ["model"]


def test_a_fit_without_an_active_run_logs_into_a_run_of_its_own_and_ends_it(autolog: None) -> None:
    pipeline().fit(X, Y)
    assert mltrack.active_run() is None
    (run,) = runs_in_store()
    assert run.info.run_name == "Pipeline"
    assert run.info.status == "FINISHED"
    assert "training_score" in run.data.metrics


def test_a_fit_that_raises_ends_the_run_it_started_as_failed(autolog: None) -> None:
    with pytest.raises(ValueError):
        LogisticRegression().fit(X, pd.Series([0.5] * len(X)))  # continuous labels
    (run,) = runs_in_store()
    assert run.info.status == "FAILED"
    assert mltrack.active_run() is None


def test_after_disabling_a_fit_logs_nothing(autolog: None) -> None:
    mltrack.autolog("sklearn", disable=True)
    run = fit_in_run(pipeline())
    assert run.data.params == {}
    assert run.data.metrics == {}
    assert artifacts(run.info.run_id) == []


def test_disabling_restores_the_original_fit(sqlite_uri: str) -> None:
    original = vars(LogisticRegression)["fit"]
    mltrack.autolog("sklearn")
    assert vars(LogisticRegression)["fit"] is not original
    mltrack.autolog("sklearn", disable=True)
    assert vars(LogisticRegression)["fit"] is original


def test_enabling_twice_patches_once(autolog: None) -> None:
    patched = vars(LogisticRegression)["fit"]
    mltrack.autolog("sklearn")
    assert vars(LogisticRegression)["fit"] is patched


def test_a_failing_score_does_not_break_the_fit(autolog: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_score(self: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
        raise RuntimeError("score is broken")

    monkeypatch.setattr(LogisticRegression, "score", broken_score)
    model = LogisticRegression(max_iter=500)
    with mltrack.start_run() as active:
        assert model.fit(X, Y) is model
    run = mltrack.get_run(active.run_id)
    assert "training_score" not in run.data.metrics
    assert run.data.params["C"] == "1.0"  # the rest is still logged
    assert artifacts(run.info.run_id) == ["model"]


def test_fitting_a_data_preparation_step_alone_starts_no_run(autolog: None) -> None:
    StandardScaler().fit(X)
    assert runs_in_store() == []


def test_a_model_fitted_inside_a_data_preparation_step_is_not_logged_on_its_own(autolog: None) -> None:
    SelectFromModel(LogisticRegression(max_iter=500)).fit(X, Y)  # fits the LogisticRegression inside
    assert runs_in_store() == []


def test_a_second_fit_in_the_same_run_keeps_the_first_params(autolog: None) -> None:
    with mltrack.start_run() as active:
        pipeline(C=0.5).fit(X, Y)
        second = pipeline(C=2.0)
        assert second.fit(X, Y) is second
    assert mltrack.get_run(active.run_id).data.params["logisticregression__C"] == "0.5"
