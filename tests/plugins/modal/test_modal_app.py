"""The Modal app of a deployment, built by the real Modal SDK (no token, no network) from a model
registered in a real MLflow store; its endpoint runs in-process through Modal's ``.local()``, and the
ASGI app it returns (the core serving app) is driven with FastAPI's TestClient."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from modal_cloud import modal_cloud

import mltrack
from mltrack.deployment.deployments import plan_deployment, validate_config
from mltrack.deployment.providers import DeployPlan
from mltrack_modal.config import ModalDeploymentConfig
from mltrack_modal.image import REMOTE_MODEL_DIR, image_recipe, stage_distributions
from mltrack_modal.modal_app import BuiltApp, build_app
from mltrack_modal.provider import ModalProvider

ROWS = [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


class ScaledSum:
    """``factor * (x + y)`` per row."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, rows: Any) -> list[float]:
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else rows  # a DataFrame, or the example
        return [self.factor * (row["x"] + row["y"]) for row in records]


def register(name: str = "churn", factor: float = 3.0) -> int:
    with mltrack.start_run():
        info = mltrack.log_model(ScaledSum(factor), "model", input_example=ROWS[:1])
    return mltrack.register_model(info.model_uri, name)


@pytest.fixture
def plan(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployPlan]:
    """The plan of deploying ``churn`` v1 with a GPU, with a token configured (planning uses no network)."""
    register()
    with modal_cloud(monkeypatch) as cloud:
        yield plan_deployment("churn", 1, "modal", {"gpu": "T4", "max_containers": 3, "secrets": ["hf"]})
        assert cloud.calls == []  # planning deployed nothing


def built(plan: DeployPlan, **config: Any) -> BuiltApp:
    validated = validate_config(ModalProvider, {**plan.config.model_dump(), **config})
    assert isinstance(validated, ModalDeploymentConfig)
    return build_app(
        image_recipe(plan.model.download()),
        validated,
        deployment_name=plan.name,
        model_name=plan.model.name,
        model_version=plan.model.version,
        site_dir=None,
    )


def test_the_app_is_a_real_modal_app_with_one_asgi_endpoint_on_the_configs_resources(plan: DeployPlan) -> None:
    import modal

    app = built(plan, cpu=2, memory=2048)
    assert isinstance(app.app, modal.App) and isinstance(app.endpoint, modal.Function)
    assert (app.name, app.app.name) == ("mltrack-churn", "mltrack-churn")
    spec = app.endpoint._spec_  # what Modal will request for each container
    assert (spec.gpus, spec.cpu, spec.memory) == ("T4", 2.0, 2048)
    assert len(spec.secrets) == 1


def test_the_endpoint_serves_the_registered_model_through_modals_local_call(plan: DeployPlan) -> None:
    asgi = built(plan).endpoint.local()
    with TestClient(asgi) as client:
        assert client.get("/ping").status_code == 200
        assert client.get("/health").status_code == 200
        metadata = client.get("/metadata").json()
        assert (metadata["name"], str(metadata["version"])) == ("churn", "1")
        split = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0], [3.0, 4.0]]}}
        answer = client.post("/invocations", json=split)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == pytest.approx([9.0, 21.0])
        records = client.post("/predict", json={"dataframe_records": ROWS})
        assert records.json()["predictions"] == pytest.approx([9.0, 21.0])
        missing = client.post("/invocations", json={"dataframe_records": [{"x": 1.0}]})
        assert 400 <= missing.status_code < 500 and "y" in missing.json()["message"]


def test_plan_shows_the_image_packages_gpu_scaling_and_the_url(plan: DeployPlan) -> None:
    resources = plan.resources
    assert resources["app"] == "mltrack-churn" and resources["gpu"] == ["T4"]
    assert resources["scaling"]["max_containers"] == 3 and resources["scaling"]["min_containers"] == 0
    image = resources["image"]
    assert image["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert all("==" in package for package in image["pip"]), image["pip"]
    assert any(package.startswith("mlflow==") for package in image["pip"])
    assert not any(package.startswith(("mltrack", "modal==")) for package in image["pip"])
    assert [d.split("==")[0] for d in image["from_this_machine"]] == ["mltrack-core", "mltrack-modal"]
    assert image["model_files"].endswith(f"-> {REMOTE_MODEL_DIR}")
    assert resources["url"] == "https://<workspace>--mltrack-churn.modal.run" and plan.url is None
    # what `mltrack deploy --plan` prints: the steps, naming the packages, the GPU, the scaling and the URL
    build, deploy, scale, wait = plan.actions[:4]
    assert f"pip install {' '.join(image['pip'])};" in build and "mltrack-core==" in build
    assert "GPU T4" in deploy and "from 0 to 3 containers" in scale
    assert wait == "wait until https://<workspace>--mltrack-churn.modal.run answers /health"


def test_with_the_workspace_set_the_plan_knows_the_exact_url(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    register()
    monkeypatch.setenv("MLTRACK_PLUGINS__MODAL__WORKSPACE", "acme")
    mltrack.configure()  # settings are read once: read them again
    with modal_cloud(monkeypatch):
        assert plan_deployment("churn", 1, "modal").url == "https://acme--mltrack-churn.modal.run"
        staging = plan_deployment("churn", 1, "modal", {"environment": "staging", "app_name": "churn-api"})
        assert staging.url == "https://acme-staging--churn-api.modal.run"


def test_model_requirements_are_pinned_from_this_machine_or_reported(plan: DeployPlan, tmp_path: Path) -> None:
    import mlflow

    model_dir = tmp_path / "model"
    shutil.copytree(plan.model.download(), model_dir)
    (model_dir / "requirements.txt").write_text(
        "mlflow>=2.0  # a range\npluggy\nnot-installed-anywhere>=1.0\n--extra-index-url https://example.invalid\n"
        "pywin32==306; sys_platform == 'win32'\nmltrack-core==0.1.0\n"
    )
    recipe = image_recipe(model_dir)
    assert recipe.packages[:3] == [
        f"mlflow=={mlflow.__version__}",
        f"pluggy=={__import__('importlib.metadata').metadata.version('pluggy')}",
        "not-installed-anywhere>=1.0",
    ]
    assert not any(p.startswith(("pywin32", "mltrack")) for p in recipe.packages)  # other OS; shipped, not pip
    assert any("not-installed-anywhere" in w and "not pinned" in w for w in recipe.warnings)
    assert any("--extra-index-url" in w for w in recipe.warnings)


def test_mltrack_is_staged_with_its_entry_points_so_the_container_finds_its_plugins(
    plan: DeployPlan, tmp_path: Path
) -> None:
    site = stage_distributions(image_recipe(plan.model.download()), tmp_path / "site")
    assert (site / "mltrack" / "serving" / "app.py").is_file() and (site / "mltrack_modal" / "remote.py").is_file()
    assert not list(site.rglob("__pycache__"))
    # an interpreter that sees only the staged folder (as the image's PYTHONPATH) finds the distributions
    code = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps([m.version('mltrack-core'), [e.name for e in m.entry_points(group='mltrack')]]))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], env={"PYTHONPATH": str(site)}, capture_output=True, text=True, check=True
    )
    version, entry_points = json.loads(result.stdout)
    assert version == mltrack.__version__ and entry_points == ["modal"]


def test_the_plugin_that_wrote_the_model_is_shipped_with_it(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mltrack_sklearn", reason="needs the sklearn plugin (not installed beside modal alone)")
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], [1.0, 2.0, 3.0])
    mltrack.register_model(model, "sk")
    with modal_cloud(monkeypatch):
        image = plan_deployment("sk", 1, "modal").resources["image"]
    assert [d.split("==")[0] for d in image["from_this_machine"]] == [
        "mltrack-core",
        "mltrack-modal",
        "mltrack-sklearn",
    ]
    assert any(p.startswith("scikit-learn==") for p in image["pip"])
