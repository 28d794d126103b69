"""Autologging plain PyTorch loops: optimizer params, the lr per step, the trained model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
from torch import nn
from torch_nets import TinyNet

import mltrack
import mltrack_torch
from mltrack_torch import autolog as torch_autolog

BATCHES = 3
EPOCHS = 2
rng = np.random.default_rng(0)
INPUTS = torch.from_numpy(rng.random((BATCHES * 8, 4), dtype=np.float32))
TARGETS = INPUTS.sum(dim=1, keepdim=True)


@pytest.fixture
def autologging(sqlite_uri: str) -> Iterator[None]:
    mltrack.autolog("torch")
    yield
    mltrack.autolog("torch", disable=True)


def train(model: nn.Module | None = None, epochs: int = EPOCHS) -> nn.Module:
    """Two epochs of a tiny regression: SGD with momentum, the rate halved every epoch."""
    torch.manual_seed(0)
    model = model if model is not None else nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(epochs):
        for batch in range(BATCHES):
            rows = slice(batch * 8, (batch + 1) * 8)
            optimizer.zero_grad()
            loss = (model(INPUTS[rows]).sum(dim=1, keepdim=True) - TARGETS[rows]).pow(2).mean()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model


def client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri)


def artifacts(uri: str, run_id: str) -> list[str]:
    return [a.path for a in client(uri).list_artifacts(run_id)]


class Warnings(logging.Handler):
    """Collects what the plugin's logger warns (pytest's caplog is off in this project's runs)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def torch_warnings() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("mltrack.torch")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_the_optimizer_and_its_hyperparameters_are_logged_as_params(autologging: None, sqlite_uri: str) -> None:
    with mltrack.start_run() as run:
        train()
    params = mltrack.get_run(run.run_id).data.params
    assert params["optimizer.name"] == "SGD"
    assert params["optimizer.lr"] == "0.1"
    assert params["optimizer.momentum"] == "0.9"
    assert params["optimizer.weight_decay"] == "0"
    assert params["optimizer.nesterov"] == "False"
    assert params["model.parameters"] == "5"  # 4 weights and a bias
    assert "optimizer.params" not in params and "optimizer.foreach" not in params


def test_the_learning_rate_is_logged_at_every_step_as_the_scheduler_changes_it(
    autologging: None, sqlite_uri: str
) -> None:
    with mltrack.start_run() as run:
        train()
    history = sorted(client(sqlite_uri).get_metric_history(run.run_id, "lr"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(1, EPOCHS * BATCHES + 1))
    assert [m.value for m in history] == pytest.approx([0.1] * BATCHES + [0.05] * BATCHES)


def test_the_trained_model_is_logged_when_the_run_finishes(autologging: None, sqlite_uri: str) -> None:
    with mltrack.start_run() as run:
        model = train()
        assert "model" not in artifacts(sqlite_uri, run.run_id)  # not before the end
    assert "model" in artifacts(sqlite_uri, run.run_id)
    loaded = mltrack_torch.load_model(f"runs:/{run.run_id}/model", map_location="cpu")
    assert isinstance(loaded, nn.Linear)
    with torch.no_grad():
        torch.testing.assert_close(loaded(INPUTS), model(INPUTS))
    signature = mlflow.models.get_model_info(f"runs:/{run.run_id}/model").signature
    assert signature is not None  # from the first rows of a training batch
    assert signature.inputs.to_dict()[0]["tensor-spec"] == {"dtype": "float32", "shape": (-1, 4)}


def test_a_model_built_before_mltrack_connected_to_its_store_is_found(sqlite_uri: str) -> None:
    model = nn.Linear(4, 1)  # alive before the store's gc.freeze(), which hides it from gc.get_objects()
    mltrack.autolog("torch")
    try:
        with mltrack.start_run() as run:
            train(model)
    finally:
        mltrack.autolog("torch", disable=True)
    assert "model" in artifacts(sqlite_uri, run.run_id)


def test_the_outermost_module_is_logged_not_the_layer_holding_the_first_weights(
    autologging: None, sqlite_uri: str
) -> None:
    with mltrack.start_run() as run:
        train(TinyNet())
    assert isinstance(mltrack_torch.load_model(f"runs:/{run.run_id}/model"), TinyNet)


def test_a_tracked_function_gets_its_model_logged_after_it_returned(sqlite_uri: str) -> None:
    @mltrack.track(autolog=["torch"])
    def fit() -> dict[str, float]:
        train()  # the model is gone when fit returns; autologging kept it for the run's end
        return {"done": 1.0}

    fit()
    (run,) = mltrack.search_runs()
    assert "model" in artifacts(sqlite_uri, run.info.run_id)
    assert run.data.params["optimizer.name"] == "SGD"
    assert not torch_autolog.is_enabled()  # switched on for the call only


def test_a_model_the_user_logged_under_the_same_name_is_kept(autologging: None, sqlite_uri: str) -> None:
    marker = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1))
    with mltrack.start_run() as run:
        train()
        mltrack.log_model(marker, "model")
    loaded = mltrack_torch.load_model(f"runs:/{run.run_id}/model")
    assert isinstance(loaded, nn.Sequential)


def test_a_failed_run_logs_no_model(autologging: None, sqlite_uri: str) -> None:
    with pytest.raises(RuntimeError), mltrack.start_run() as run:
        train()
        raise RuntimeError("diverged")
    assert "model" not in artifacts(sqlite_uri, run.run_id)
    assert mltrack.get_run(run.run_id).data.params["optimizer.name"] == "SGD"


def test_models_are_not_logged_when_the_setting_is_off(autologging: None, sqlite_uri: str) -> None:
    mltrack.configure(plugins={"torch": {"log_models": False}})
    with mltrack.start_run() as run:
        train()
    assert "model" not in artifacts(sqlite_uri, run.run_id)
    assert "lr" in mltrack.get_run(run.run_id).data.metrics


def test_a_second_optimizer_with_other_settings_logs_under_its_own_prefix(autologging: None, sqlite_uri: str) -> None:
    generator, critic = nn.Linear(4, 4), nn.Linear(4, 1)
    g_opt = torch.optim.Adam(generator.parameters(), lr=0.01, betas=(0.5, 0.999))
    c_opt = torch.optim.SGD(critic.parameters(), lr=0.2)
    with mltrack.start_run() as run:
        for _ in range(2):
            for optimizer, loss in ((g_opt, critic(generator(INPUTS)).mean()), (c_opt, critic(INPUTS).mean())):
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    data = mltrack.get_run(run.run_id).data
    assert data.params["optimizer.name"] == "Adam"
    assert data.params["optimizer.betas"] == "[0.5, 0.999]"
    assert data.params["model.parameters"] == "20"
    assert data.params["optimizer_2.name"] == "SGD"
    assert data.params["optimizer_2.lr"] == "0.2"
    assert data.params["optimizer_2.model.parameters"] == "5"
    assert data.metrics["lr"] == pytest.approx(0.01)
    assert data.metrics["optimizer_2.lr"] == pytest.approx(0.2)
    assert {"model", "model_2"} <= set(artifacts(sqlite_uri, run.run_id))


def test_a_new_optimizer_with_the_same_settings_continues_the_series(autologging: None, sqlite_uri: str) -> None:
    model = nn.Linear(4, 1)
    with mltrack.start_run() as run:
        for _ in range(2):  # some loops build their optimizer anew each epoch
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for _ in range(BATCHES):
                optimizer.zero_grad()
                model(INPUTS).sum().backward()
                optimizer.step()
    history = client(sqlite_uri).get_metric_history(run.run_id, "lr")
    assert sorted(m.step for m in history) == list(range(1, 2 * BATCHES + 1))
    assert "optimizer_2.name" not in mltrack.get_run(run.run_id).data.params


def test_param_groups_each_get_their_rate(autologging: None, sqlite_uri: str) -> None:
    model = TinyNet()
    optimizer = torch.optim.SGD(
        [{"params": model.hidden.parameters()}, {"params": model.out.parameters(), "lr": 0.01}], lr=0.1
    )
    with mltrack.start_run() as run:
        optimizer.zero_grad()
        model(INPUTS).sum().backward()
        optimizer.step()
    data = mltrack.get_run(run.run_id).data
    assert data.params["optimizer.param_groups"] == "2"
    assert data.params["optimizer.group1.lr"] == "0.01"
    assert data.metrics["lr"] == pytest.approx(0.1)
    assert data.metrics["lr.group1"] == pytest.approx(0.01)


def test_without_autologging_nothing_is_logged(sqlite_uri: str) -> None:
    with mltrack.start_run() as run:
        train()
    logged = mltrack.get_run(run.run_id).data
    assert logged.params == {}
    assert logged.metrics == {}
    assert artifacts(sqlite_uri, run.run_id) == []


def test_disabling_removes_the_hook(sqlite_uri: str) -> None:
    mltrack.autolog("torch")
    mltrack.autolog("torch", disable=True)
    assert not torch_autolog.is_enabled()
    with mltrack.start_run() as run:
        train()
    assert mltrack.get_run(run.run_id).data.metrics == {}
    assert artifacts(sqlite_uri, run.run_id) == []


def test_training_outside_a_run_logs_nothing_and_works(autologging: None) -> None:
    model = train()
    assert mltrack.active_run() is None
    assert isinstance(model, nn.Linear)


def test_a_logging_failure_never_breaks_training(
    autologging: None, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, torch_warnings: Warnings
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the queue is gone")

    monkeypatch.setattr(mltrack, "log_metric", broken)  # the plugin logs through the public API
    with mltrack.start_run():
        model = train()
    assert isinstance(model, nn.Linear)
    assert torch_warnings.messages == [
        "mltrack: torch autologging could not log the learning rate: RuntimeError: the queue is gone"
    ]  # once, not at every step


def test_a_model_that_cannot_be_saved_is_warned_about_not_raised(
    autologging: None, sqlite_uri: str, torch_warnings: Warnings
) -> None:
    model = nn.Linear(4, 1)
    model.lock = threading.Lock()  # type: ignore[assignment]  # pickle cannot save a lock
    with mltrack.start_run() as run:
        train(model)
    assert mltrack.get_run(run.run_id).info.status == "FINISHED"
    assert any("could not log the trained model 'model'" in m for m in torch_warnings.messages)
