"""The torch flavours: conformance, devices, the state-dict form, and plain-MLflow loading."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import run_python
from torch import nn
from torch_nets import NeedsArguments, RenamedTinyNet, TinyNet, make_tiny_net

import mltrack
import mltrack_torch
from mltrack.errors import InvalidInputError
from mltrack.models.flavours import Flavour
from mltrack.models.registry import flavour_of, infer_flavour
from mltrack.testing.flavours import FlavourConformance
from mltrack_torch import StateDict, TorchFlavour, TorchStateDictFlavour, plugin

NETS_DIR = str(Path(__file__).parent)
X = np.random.default_rng(0).random((6, 4), dtype=np.float32)
COLUMNS = ["a", "b", "c", "d"]
NO_CUDA = not torch.cuda.is_available()


def predict(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """The module's output (the test modules behave the same in train and eval mode)."""
    with torch.no_grad():
        return model(torch.from_numpy(inputs).to(next(model.parameters()).device)).cpu().numpy()


def assert_parameters_on(model: nn.Module, device_type: str) -> None:
    assert {p.device.type for p in model.parameters()} == {device_type}


class TestTorchFlavour(FlavourConformance):
    def flavour(self) -> Flavour:
        return TorchFlavour()

    def make_model(self) -> Any:
        return make_tiny_net()

    def input_example(self) -> Any:
        return X[:3]

    def bad_input(self) -> Any:
        return X[:3, :3]  # three features where the signature says four


class TestTorchFlavourOnDataFrames(FlavourConformance):
    """nn.Sequential (no class of our own) fed a DataFrame with named columns."""

    def flavour(self) -> Flavour:
        return TorchFlavour()

    def make_model(self) -> Any:
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))

    def input_example(self) -> Any:
        return pd.DataFrame(X[:3], columns=COLUMNS)


class TestTorchStateDictFlavour(FlavourConformance):
    def flavour(self) -> Flavour:
        return TorchStateDictFlavour()

    def make_model(self) -> Any:
        torch.manual_seed(2)
        return StateDict(NeedsArguments(3), factory=functools.partial(NeedsArguments, 3))

    def input_example(self) -> Any:
        return X[:3]

    def bad_input(self) -> Any:
        return X[:3, :2]


# -- choosing a flavour -----------------------------------------------------------------


def test_infer_flavour_picks_torch_for_modules_and_the_state_dict_form_for_state_dicts() -> None:
    assert infer_flavour(make_tiny_net()).name == "torch"
    assert infer_flavour(nn.Sequential(nn.Linear(1, 1))).name == "torch"
    assert infer_flavour(StateDict(make_tiny_net())).name == "torch-state-dict"


@pytest.mark.parametrize("obj", [object(), TinyNet, torch.zeros(2), X], ids=["object", "class", "tensor", "array"])
def test_the_plugin_passes_on_what_it_cannot_save(obj: Any) -> None:
    assert plugin.infer_flavour(obj) is None


def test_requirements_pin_the_public_torch_version() -> None:
    requirements = TorchFlavour().requirements(make_tiny_net())
    public = torch.__version__.split("+")[0]
    assert requirements[0] == f"torch=={public}"
    assert "+" not in requirements[0]
    assert requirements[1].startswith("cloudpickle==")


def test_predicting_for_a_signature_leaves_the_module_in_training_mode() -> None:
    model = make_tiny_net().train()
    output = TorchFlavour().predict_for_signature(model, X[:2])
    assert model.training
    assert isinstance(output, np.ndarray)
    assert output.shape == (2, 2)


def test_an_example_of_the_wrong_dtype_is_refused_when_logging(sqlite_uri: str) -> None:
    with mltrack.start_run(), pytest.raises(InvalidInputError, match="input_example"):
        mltrack.log_model(make_tiny_net(), "model", input_example=X.astype(np.float64))


def test_saving_and_loading_leave_the_root_logger_as_it_was(tmp_path: Path) -> None:
    """Importing mlflow.pytorch runs logging.basicConfig(level=ERROR); the plugin undoes it."""
    result = run_python(
        "import logging, torch\n"
        "from pathlib import Path\n"
        "from mltrack_torch import TorchFlavour\n"
        f"path = Path({str(tmp_path / 'model')!r})\n"
        "TorchFlavour().save(torch.nn.Linear(4, 1), path)\n"
        "TorchFlavour().load(path)\n"
        "TorchFlavour().load_predictor(path)\n"
        "print(logging.getLogger().level, len(logging.getLogger().handlers))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == [str(logging.WARNING), "0"]


# -- the registry round trip and devices ------------------------------------------------


def test_log_register_and_load_round_trip(sqlite_uri: str) -> None:
    model = make_tiny_net()
    with mltrack.start_run():
        info = mltrack.log_model(model, "model", input_example=X[:3])
    assert info.flavour == "torch"
    assert info.signature is not None
    mltrack.register_model(info.model_uri, "tiny", alias="champion")
    loaded = mltrack.load_model("tiny", "@champion")
    assert isinstance(loaded, TinyNet)
    assert not loaded.training
    np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)
    np.testing.assert_allclose(mltrack.load_predictor("tiny").predict(X), predict(model, X), rtol=1e-6)


def test_load_model_puts_the_model_on_the_chosen_device(sqlite_uri: str) -> None:
    model = make_tiny_net()
    mltrack.register_model(model, "tiny")
    on_cpu = mltrack_torch.load_model("tiny", map_location="cpu")
    assert_parameters_on(on_cpu, "cpu")
    np.testing.assert_allclose(predict(on_cpu, X), predict(model, X), rtol=1e-6)
    # "meta" exists on every machine: proof that map_location is honoured, not ignored
    assert_parameters_on(mltrack_torch.load_model("tiny", 1, map_location=torch.device("meta")), "meta")


def test_load_model_takes_a_uri_or_a_directory(sqlite_uri: str, tmp_path: Path) -> None:
    model = make_tiny_net()
    with mltrack.start_run() as run:
        mltrack.log_model(model, "net")
    by_uri = mltrack_torch.load_model(f"runs:/{run.run_id}/net", map_location="cpu")
    local = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="net", tracking_uri=sqlite_uri, dst_path=str(tmp_path / "download")
    )
    by_path = mltrack_torch.load_model(Path(local))
    for loaded in (by_uri, by_path):
        np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)


def test_a_model_records_its_device_and_is_written_from_the_cpu(tmp_path: Path) -> None:
    path = tmp_path / "model"
    TorchFlavour().save(make_tiny_net(), path)
    assert yaml.safe_load((path / "MLmodel").read_text())["metadata"]["torch_device"] == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="checks the fallback of a machine without CUDA")
def test_a_model_saved_on_a_gpu_loads_on_the_cpu_of_a_machine_without_one(tmp_path: Path) -> None:
    path = tmp_path / "model"
    TorchFlavour().save(make_tiny_net(), path)
    meta = yaml.safe_load((path / "MLmodel").read_text())
    meta["metadata"]["torch_device"] = "cuda:0"  # as a GPU machine records it
    (path / "MLmodel").write_text(yaml.safe_dump(meta))
    assert_parameters_on(TorchFlavour().load(path), "cpu")


@pytest.mark.skipif(not NO_CUDA, reason="checks a machine without CUDA")
def test_loading_onto_a_device_this_machine_lacks_says_so(tmp_path: Path) -> None:
    path = tmp_path / "model"
    TorchFlavour().save(make_tiny_net(), path)
    with pytest.raises(InvalidInputError, match="not available on this machine"):
        TorchFlavour().load(path, map_location="cuda")


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_a_model_trained_on_cuda_loads_on_the_cpu(sqlite_uri: str) -> None:
    model = make_tiny_net().to("cuda")
    with mltrack.start_run() as run:
        mltrack.log_model(model, "model", input_example=X[:3])
    assert_parameters_on(model, "cuda")  # saving does not move the user's model
    on_cpu = mltrack_torch.load_model(f"runs:/{run.run_id}/model", map_location="cpu")
    assert_parameters_on(on_cpu, "cpu")
    np.testing.assert_allclose(predict(on_cpu, X), predict(model, X), rtol=1e-5, atol=1e-6)
    assert_parameters_on(mltrack_torch.load_model(f"runs:/{run.run_id}/model"), "cuda")  # back where it was


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_a_state_dict_saved_on_cuda_loads_on_the_cpu(sqlite_uri: str) -> None:
    model = make_tiny_net().to("cuda")
    with mltrack.start_run() as run:
        mltrack.log_model(StateDict(model), "model")
    on_cpu = mltrack_torch.load_model(f"runs:/{run.run_id}/model", map_location="cpu")
    assert_parameters_on(on_cpu, "cpu")
    np.testing.assert_allclose(predict(on_cpu, X), predict(model, X), rtol=1e-5, atol=1e-6)


# -- the state-dict form ------------------------------------------------------------------


def test_a_state_dict_round_trips_through_the_registry_with_its_factory(sqlite_uri: str) -> None:
    torch.manual_seed(3)
    model = NeedsArguments(5)
    mltrack.register_model(StateDict(model, factory=functools.partial(NeedsArguments, 5)), "weights")
    loaded = mltrack.load_model("weights")
    assert isinstance(loaded, NeedsArguments)
    np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)


def test_a_state_dict_loads_into_a_factory_given_at_load_time(sqlite_uri: str) -> None:
    """What to do when the saved factory's code has moved: give a new one."""
    model = make_tiny_net()
    mltrack.register_model(StateDict(model), "weights")
    rebuilt = mltrack_torch.load_model("weights", factory=RenamedTinyNet, map_location="cpu")
    assert isinstance(rebuilt, RenamedTinyNet)
    np.testing.assert_allclose(predict(rebuilt, X), predict(model, X), rtol=1e-6)
    with pytest.raises(InvalidInputError, match="do not fit"):
        mltrack_torch.load_model("weights", factory=lambda: NeedsArguments(3))


def test_the_weights_load_without_unpickling_code(tmp_path: Path) -> None:
    model = make_tiny_net()
    path = tmp_path / "model"
    TorchStateDictFlavour().save(StateDict(model), path)
    weights = torch.load(path / "artifacts" / "state_dict.pt", weights_only=True)
    assert set(weights) == set(model.state_dict())


def test_logging_a_module_as_a_state_dict_uses_its_class_as_the_factory(sqlite_uri: str) -> None:
    model = make_tiny_net()
    with mltrack.start_run() as run:
        info = mltrack.log_model(model, "model", flavour="torch-state-dict")
    assert info.flavour == "torch-state-dict"
    loaded = mltrack_torch.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)


def test_a_module_that_needs_arguments_asks_for_a_factory(sqlite_uri: str) -> None:
    with mltrack.start_run(), pytest.raises(InvalidInputError, match="factory") as caught:
        mltrack.log_model(NeedsArguments(3), "model", flavour="torch-state-dict")
    assert "StateDict(model, factory=...)" in str(caught.value)


def test_a_factory_that_builds_another_architecture_is_refused_at_save_time(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"do not fit \(other shape: layer.bias, layer.weight\)"):
        TorchStateDictFlavour().save(
            StateDict(NeedsArguments(3), factory=functools.partial(NeedsArguments, 7)), tmp_path / "model"
        )


def test_a_factory_is_refused_for_a_whole_saved_module(sqlite_uri: str) -> None:
    mltrack.register_model(make_tiny_net(), "whole")
    with pytest.raises(InvalidInputError, match="state-dict form"):
        mltrack_torch.load_model("whole", factory=TinyNet)


# -- MLflow without MLTrack -----------------------------------------------------------------


@pytest.mark.parametrize("form", ["torch", "torch-state-dict"])
def test_plain_mlflow_loads_a_logged_model_without_mltrack_importable(
    form: str, sqlite_uri: str, tmp_path: Path
) -> None:
    model = make_tiny_net()
    with mltrack.start_run() as run:
        mltrack.log_model(model, "model", flavour=form, input_example=X[:3])
    local = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="model", tracking_uri=sqlite_uri, dst_path=str(tmp_path / "download")
    )
    assert "mltrack_torch" not in (Path(local) / "MLmodel").read_text()
    np.save(tmp_path / "input.npy", X)
    code = (
        "import sys\n"
        "sys.modules['mltrack'] = None\n"
        "sys.modules['mltrack_torch'] = None\n"
        "import json, mlflow.pyfunc, numpy as np\n"
        f"model = mlflow.pyfunc.load_model({local!r})\n"
        f"print(json.dumps(model.predict(np.load({str(tmp_path / 'input.npy')!r})).tolist()))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mltrack') and sys.modules[m] is not None)))"
    )
    result = run_python(code, env={"PYTHONPATH": NETS_DIR})
    assert result.returncode == 0, result.stderr
    predictions, mltrack_modules = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    np.testing.assert_allclose(np.array(predictions, dtype=np.float32), predict(model, X), rtol=1e-6)
    assert mltrack_modules == []


def test_a_model_saved_by_plain_mlflow_pytorch_is_read_by_this_flavour(tmp_path: Path) -> None:
    model = make_tiny_net()
    mlflow.pytorch.save_model(model, str(tmp_path / "plain"), serialization_format="pickle", pip_requirements=[])
    flavour = flavour_of(tmp_path / "plain")
    assert flavour.name == "torch"
    loaded = mltrack_torch.load_model(tmp_path / "plain", map_location="cpu")
    np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)


def test_an_exported_pt2_model_loads_where_its_weights_are(tmp_path: Path) -> None:
    model = make_tiny_net()
    mlflow.pytorch.save_model(
        model, str(tmp_path / "pt2"), input_example=X[:3], serialization_format="pt2", pip_requirements=[]
    )
    loaded = mltrack_torch.load_model(tmp_path / "pt2")
    np.testing.assert_allclose(predict(loaded, X), predict(model, X), rtol=1e-6)
    with pytest.raises(mltrack.MLTrackError, match="cannot be loaded onto meta"):
        mltrack_torch.load_model(tmp_path / "pt2", map_location="meta")
