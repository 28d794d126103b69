"""mltrack-ui as a plugin: discovered, adds `mltrack ui`, declares hooks other plugins use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import mltrack

from .ui_helpers import UI, Seeded, serve


def mltrack_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mltrack"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_ui_plugin_is_installed_and_discovered() -> None:
    result = mltrack_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    [ui] = [p for p in json.loads(result.stdout) if p["name"] == "ui"]
    assert ui["status"] == "loaded" and ui["distribution"] == "mltrack-ui"
    assert ui["contributes"] == {"commands": ["ui"], "settings": ["ui"]}


def test_mltrack_ui_is_a_command() -> None:
    result = mltrack_cli("ui", "--help")
    assert result.returncode == 0 and "--host" in result.stdout and "--port" in result.stdout


def test_importing_the_plugin_does_not_import_the_web_stack() -> None:
    code = "import mltrack_ui.plugin, sys; print(sorted({'fastapi', 'uvicorn', 'mlflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_settings_come_from_the_plugin_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrack.extend import plugin_settings

    monkeypatch.setenv("MLTRACK_PLUGINS__UI__PORT", "6123")
    monkeypatch.setenv("MLTRACK_PLUGINS__UI__AUTH_TOKEN", "a-long-enough-token")
    settings = plugin_settings("ui")
    assert settings.port == 6123 and settings.host == "127.0.0.1"
    assert "a-long-enough-token" not in repr(settings)  # a SecretStr


# -- hooks for other plugins -------------------------------------------------------------------


class PanelPlugin:
    """A plugin that uses the UI's hooks without importing mltrack-ui."""

    @mltrack.hookimpl
    def ui_run_panels(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "title": "Run facts",
                "kind": "keyvalue",
                "data": {"name": run["run_name"], "n_params": len(run["params"])},
            },
            {"title": "Table", "kind": "table", "data": {"columns": ["a", "b"], "rows": [[1, "<i>x</i>"]]}},
            {"title": "Broken", "kind": "html", "data": "<script>alert(1)</script>"},
        ]

    @mltrack.hookimpl
    def ui_model_panels(self, model: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"title": "Model facts", "kind": "text", "data": f"{model['name']} v{model['version']}"}]

    @mltrack.hookimpl
    def ui_register_routes(self, register: Any) -> None:
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/hello")
        def hello() -> dict[str, str]:
            return {"hello": "from a plugin"}

        register(router)


@pytest.fixture
def ui_with_panel_plugin(seeded: Seeded) -> Any:
    from mltrack.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    manager.load()
    manager._pm.register(PanelPlugin(), name="panels-demo")  # an installed plugin, without packaging one
    with serve(tracking_uri=seeded.uri) as server:
        yield UI(server.url)


def test_a_plugin_adds_panels_to_the_run_page(ui_with_panel_plugin: UI, seeded: Seeded) -> None:
    panels = ui_with_panel_plugin.ok(f"/api/runs/{seeded.plain_run}/panels")

    facts, table, broken = panels
    assert facts == {
        "title": "Run facts",
        "kind": "keyvalue",
        "data": {"name": "<img src=x onerror=alert(1)>", "n_params": 2},
        "plugin": "panels-demo",
        "error": False,
    }
    assert table["data"] == {"columns": ["a", "b"], "rows": [[1, "<i>x</i>"]]}
    assert broken["error"] and "not one of" in broken["data"] and broken["kind"] == "text"


def test_a_plugin_adds_panels_to_the_model_page(ui_with_panel_plugin: UI) -> None:
    panels = ui_with_panel_plugin.ok("/api/model/panels?" + urlencode({"name": "churn", "version": 2}))
    assert [p["data"] for p in panels if p["plugin"] == "panels-demo"] == ["churn v2"]


def test_plugin_routes_live_under_their_own_prefix(ui_with_panel_plugin: UI) -> None:
    assert ui_with_panel_plugin.ok("/-/panels-demo/hello") == {"hello": "from a plugin"}


def test_the_ui_hooks_are_declared_once_mltrack_ui_is_loaded() -> None:
    from mltrack.plugins.manager import get_plugin_manager

    hooks = get_plugin_manager().hook
    assert {"ui_run_panels", "ui_model_panels", "ui_register_routes"} <= set(vars(hooks))


# -- the torch plugin's panel (an in-repo plugin using the UI's hooks) -------------------------


def test_the_torch_plugin_loads_without_mltrack_ui() -> None:
    pytest.importorskip("mltrack_torch")
    result = mltrack_cli("plugins", "--json", env={"MLTRACK_DISABLE_PLUGINS": "ui,broken-import,misspelled-hook"})
    assert result.returncode == 0, result.stderr
    torch = next(p for p in json.loads(result.stdout) if p["name"] == "torch")
    assert torch["status"] == "loaded" and "ui_model_panels" in torch["hooks"]


def test_the_torch_plugin_summarises_a_registered_torch_model(sqlite_uri: str) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("mltrack_torch")

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    with mltrack.start_run("torch-model", experiment="ui-torch"):
        mltrack.log_model(net, "model")
    mltrack.register_model(net, "torch-net")
    mltrack.flush()

    with serve(tracking_uri=sqlite_uri) as server:
        panels = UI(server.url).ok("/api/model/panels?" + urlencode({"name": "torch-net", "version": 1}))
    [panel] = [p for p in panels if p["plugin"] == "torch"]
    assert panel["title"] == "PyTorch model" and panel["kind"] == "keyvalue"
    assert panel["data"]["torch version"] == torch.__version__
    assert panel["data"]["form"] == "whole module (torch)" and panel["data"]["saved from device"] == "cpu"


# -- strict JSON, whatever a plugin returns ------------------------------------------------------------


class NonFinitePlugin:
    """A plugin whose panel and route hold NaN and infinity (a metric summary, a latency)."""

    @mltrack.hookimpl
    def ui_run_panels(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"title": "Scores", "kind": "keyvalue", "data": {"f1": float("nan"), "loss": float("inf"), "n": 3}},
            {"title": "Table", "kind": "table", "data": {"columns": ["x"], "rows": [[float("-inf")], [0.5]]}},
        ]

    @mltrack.hookimpl
    def ui_register_routes(self, register: Any) -> None:
        from fastapi import APIRouter

        router = APIRouter()

        @router.get("/stats")
        def stats() -> dict[str, Any]:
            return {"mean": float("nan"), "values": [1.0, float("inf")]}

        register(router)


@pytest.fixture
def ui_with_non_finite_plugin(seeded: Seeded) -> Any:
    from mltrack.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    manager.load()
    manager._pm.register(NonFinitePlugin(), name="non-finite")
    with serve(tracking_uri=seeded.uri) as server:
        yield UI(server.url)


def test_nan_and_infinity_from_a_plugins_panel_are_sent_as_null(ui_with_non_finite_plugin: UI, seeded: Seeded) -> None:
    scores, table = ui_with_non_finite_plugin.ok(f"/api/runs/{seeded.plain_run}/panels")  # strict JSON only
    assert scores["data"] == {"f1": None, "loss": None, "n": 3}
    assert table["data"]["rows"] == [[None], [0.5]]


def test_nan_and_infinity_from_a_plugins_route_are_sent_as_null(ui_with_non_finite_plugin: UI) -> None:
    assert ui_with_non_finite_plugin.ok("/-/non-finite/stats") == {"mean": None, "values": [1.0, None]}
