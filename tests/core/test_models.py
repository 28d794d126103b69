"""Models in core: the python flavour, log_model, the registry and loading back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from mlflow.models import infer_signature

import mltrack
from mltrack.models.flavours import Flavour
from mltrack.python_flavour import PythonFlavour
from mltrack.testing.flavours import FlavourConformance

FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 0.0, -1.0]})


class Scorer:
    """A model that is just an object with predict()."""

    def __init__(self, weight: float = 2.0) -> None:
        self.weight = weight

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"] * self.weight + frame["b"])


class ContextModel:
    """A PythonModel-style class: load_context, then predict(context, inputs, params)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def load_context(self, context: Any) -> None:
        self.offset = 10.0

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        scale = (params or {}).get("scale", 1.0)
        return np.asarray(model_input["a"] * scale + self.offset)


class TestPythonFlavourWithPredict(FlavourConformance):
    def flavour(self) -> Flavour:
        return PythonFlavour()

    def make_model(self) -> Any:
        return Scorer()

    def input_example(self) -> Any:
        return FRAME


def test_log_model_returns_a_model_uri_that_plain_mlflow_loads(sqlite_uri: str) -> None:
    with mltrack.start_run():
        info = mltrack.log_model(Scorer(), "scorer", input_example=FRAME)
    assert info.model_uri.startswith("runs:/") and info.model_uri.endswith("/scorer")
    assert info.flavour == "python"
    assert info.signature is not None
    got = mlflow.pyfunc.load_model(info.model_uri).predict(FRAME)
    np.testing.assert_allclose(got, Scorer().predict(FRAME))


def test_plain_callables_and_python_model_style_classes_are_python_flavoured(sqlite_uri: str) -> None:
    with mltrack.start_run():
        fn = mltrack.log_model(lambda frame: np.asarray(frame["a"]) + 1, "fn")
        # params reach predict only when the signature declares them (MLflow's rule)
        signature = infer_signature(FRAME, np.zeros(3), params={"scale": 1.0})
        ctx = mltrack.log_model(ContextModel(), "ctx", signature=signature)
    assert fn.flavour == ctx.flavour == "python"
    np.testing.assert_allclose(mlflow.pyfunc.load_model(fn.model_uri).predict(FRAME), [2.0, 3.0, 4.0])
    loaded = mlflow.pyfunc.load_model(ctx.model_uri)
    np.testing.assert_allclose(loaded.predict(FRAME, params={"scale": 2.0}), [12.0, 14.0, 16.0])


def test_register_load_by_version_latest_and_alias(sqlite_uri: str) -> None:
    with mltrack.start_run():
        first = mltrack.log_model(Scorer(1.0), "m")
    assert mltrack.register_model(first.model_uri, "scorer", tags={"stage": "staging"}, alias="champion") == 1
    assert mltrack.register_model(Scorer(3.0), "scorer") == 2  # an object is logged in a run first
    assert mltrack.load_model("scorer").weight == 3.0
    assert mltrack.load_model("scorer", version="latest").weight == 3.0
    assert mltrack.load_model("scorer", version=1).weight == 1.0
    assert mltrack.load_model("scorer", version="@champion").weight == 1.0
    assert mltrack.load_model("scorer", version="champion").weight == 1.0
    predictor = mltrack.load_predictor("scorer", 2)
    np.testing.assert_allclose(predictor.predict(FRAME), Scorer(3.0).predict(FRAME))
    mltrack.set_alias("scorer", "champion", 2)
    assert mltrack.load_model("scorer", "@champion").weight == 3.0
    mltrack.delete_alias("scorer", "champion")
    with pytest.raises(mltrack.ModelNotFoundError, match="no alias 'champion'"):
        mltrack.load_model("scorer", "@champion")
    version = mlflow.MlflowClient(sqlite_uri).get_model_version("scorer", "1")
    assert version.tags == {"stage": "staging"}


def test_log_model_can_register_in_one_call(sqlite_uri: str) -> None:
    with mltrack.start_run():
        info = mltrack.log_model(Scorer(), "m", registered_model_name="one-call")
    assert info.registered_model_version == 1
    assert [int(v.version) for v in mltrack.list_versions("one-call")] == [1]


def test_unknown_model_version_or_alias_lists_what_exists(sqlite_uri: str) -> None:
    mltrack.register_model(Scorer(), "exists", alias="prod")
    with pytest.raises(mltrack.ModelNotFoundError) as missing:
        mltrack.load_model("nope")
    assert "exists" in str(missing.value)
    with pytest.raises(mltrack.ModelNotFoundError, match="versions: 1"):
        mltrack.load_model("exists", 5)
    with pytest.raises(mltrack.ModelNotFoundError, match="@prod -> v1"):
        mltrack.load_model("exists", "@staging")
    with pytest.raises(mltrack.InvalidInputError, match="version"):
        mltrack.load_model("exists", 1.5)  # type: ignore[arg-type]


def test_bad_input_is_refused_before_anything_is_written(sqlite_uri: str) -> None:
    with mltrack.start_run() as run:
        with pytest.raises(mltrack.InvalidInputError, match="name"):
            mltrack.log_model(Scorer(), "../escape")
        with pytest.raises(mltrack.InvalidInputError, match="model"):
            mltrack.log_model(object(), "m")
        with pytest.raises(mltrack.InvalidInputError, match="input_example"):
            mltrack.log_model(Scorer(), "m", input_example=pd.DataFrame({"x": [1]}))
        with pytest.raises(mltrack.PluginError, match=r"installed flavours: .*python"):
            mltrack.log_model(Scorer(), "m", flavour="tensorflow")
        with pytest.raises(mltrack.InvalidInputError, match="alias"):
            mltrack.register_model(Scorer(), "r", alias="latest")
    assert mlflow.MlflowClient(sqlite_uri).list_artifacts(run.run_id) == []
    assert mltrack.list_models() == []


def test_models_cli_list_show_alias(sqlite_uri: str) -> None:
    mltrack.register_model(Scorer(), "cli-model", tags={"team": "ml"})
    mltrack.register_model(Scorer(5.0), "cli-model")
    listed = run_cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"name": "cli-model", "latest_version": 2, "versions": 2, "aliases": {}, "description": None}
    ]
    aliased = run_cli("models", "alias", "cli-model", "champion", "1")
    assert aliased.returncode == 0, aliased.stderr
    shown = json.loads(run_cli("models", "show", "cli-model", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in shown["versions"]] == [(1, ["champion"]), (2, [])]
    assert shown["versions"][0]["tags"] == {"team": "ml"}
    missing = run_cli("models", "show", "nope")
    assert missing.returncode == 1
    assert "cli-model" in missing.stderr


def test_track_autolog_switches_autologgers_for_one_run(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrack.tracking.autologging import Autologger

    events: list[str] = []

    class Recorder(Autologger):
        name = "recorder"

        def enable(self) -> None:
            events.append("on")

        def disable(self) -> None:
            events.append("off")

    from mltrack.tracking import autologging

    monkeypatch.setattr(autologging, "autologgers", lambda: {"recorder": Recorder()})
    manager = mltrack.get_plugin_manager()
    monkeypatch.setattr(manager, "lookup", lambda kind, name: Recorder())

    @mltrack.track(autolog=True)
    def train() -> None:
        events.append("train")

    train()
    assert events == ["on", "train", "off"]


def test_import_mltrack_imports_no_model_framework(tmp_path: Path) -> None:
    from conftest import run_python

    done = run_python(
        "import sys, mltrack\n"
        "from mltrack.cli import build_cli\n"
        "build_cli()\n"
        "heavy = [m for m in ('torch', 'sklearn', 'langchain', 'langchain_core', 'mlflow') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


QUOTED_NAMES = ["it's", 'say "hi"', "both ' and \"", "back\\slash's", "ends with \\", "100% it's_done"]


def test_models_whose_names_hold_quotes_or_backslashes_load_list_and_show(tracking_uri: str) -> None:
    # MLflow accepts any name; its search filter has no escapes, so a quote once broke every lookup.
    client = mlflow.MlflowClient(tracking_uri)
    with mltrack.start_run():
        info = mltrack.log_model(Scorer(4.0), "m")
    decoy = "it_s"  # matched by the LIKE pattern used for "it's", but not the same name
    for name in [*QUOTED_NAMES, decoy]:
        client.create_registered_model(name)
        client.create_model_version(name, source=info.model_uri, run_id=info.run_id)
    client.create_model_version("it's", source=info.model_uri, run_id=info.run_id)
    mltrack.flush()

    assert mltrack.load_model("it's").weight == 4.0
    assert [int(v.version) for v in mltrack.list_versions("it's")] == [1, 2]
    for name in QUOTED_NAMES:
        assert mltrack.load_model(name, version=1).weight == 4.0, name
        assert [v.name for v in mltrack.list_versions(name)] == [name] * (2 if name == "it's" else 1)
    assert [int(v.version) for v in mltrack.list_versions(decoy)] == [1]

    listed = run_cli("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    latest = {row["name"]: row["latest_version"] for row in json.loads(listed.stdout)}
    assert latest["it's"] == 2 and all(latest[name] == 1 for name in QUOTED_NAMES[1:])
    shown = run_cli("models", "show", "both ' and \"", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [v["version"] for v in json.loads(shown.stdout)["versions"]] == [1]


def test_registering_an_object_outside_a_run_keeps_its_run_off_the_default_experiment(sqlite_uri: str) -> None:
    from mltrack.models.registry import REGISTRATION_EXPERIMENT

    first = mltrack.register_model(model=lambda rows: rows, name="loose")
    second = mltrack.register_model(model=lambda rows: rows, name="loose")
    client = mlflow.MlflowClient(sqlite_uri)
    assert client.search_runs(["0"]) == []  # nothing on the Default experiment
    experiment = client.get_experiment_by_name(REGISTRATION_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["register-loose", "register-loose"]
    assert {r.data.tags["mltrack.registered_model"] for r in runs} == {"loose"}
    assert (first, second) == (1, 2)
