"""A conformance suite every ``DeployProvider`` runs, ours and third parties' alike.

Subclass it under a ``Test*`` name and implement ``provider_class`` and ``valid_config``.
The suite gives each test a fresh sqlite store holding a small python-flavour model
(``conformance-model``: version N predicts ``N * (x + y)`` for each row), installs your
provider class into a fresh plugin manager, and drives it through ``mltrack.deploy``::

    class TestMyProvider(ProviderConformance):
        def provider_class(self): return MyProvider
        def valid_config(self): return {"instance_type": "ml.m5.large"}
        def invalid_configs(self): return [({"instance_count": 0}, "instance_count")]

        @pytest.fixture(autouse=True)
        def _target(self, monkeypatch):  # point the provider at its local stand-in
            ...

Optional: ``invalid_configs`` (config, field the error must name), ``remove_credentials``
(a context manager that takes the credentials away: the suite then checks the
``CredentialsMissingError``; leave the default for a provider that needs none) and
``target_snapshot`` (what exists on the target, to prove ``plan`` and refused deploys
create nothing; default ``provider.list()``). Standard tests may not be overridden
silently (``@overrides_standard_test("why")``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import mltrack
from mltrack.deployment.deployments import (
    delete_deployment,
    deploy,
    get_deployment,
    get_provider,
    list_deployments,
    plan_deployment,
    validate_config,
)
from mltrack.deployment.providers import DeploymentState, DeployProvider, validate_provider
from mltrack.errors import CredentialsMissingError, InvalidInputError
from mltrack.storage import store
from mltrack.testing.sinks import overrides_standard_test

# pandas, the settings and the plugin manager are imported inside the checks that use them.

__all__ = ["MODEL_NAME", "ProviderConformance", "overrides_standard_test"]

MODEL_NAME = "conformance-model"
ROWS = [{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}]


class _ScaledSum:
    """Version N of the conformance model: ``N * (x + y)`` per row."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def predict(self, rows: Any) -> Any:
        import pandas as pd

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        return ((frame["x"] + frame["y"]) * self.factor).astype(float).to_numpy()


_store_template: Path | None = None


def _store_with_models(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store in ``folder`` holding the two versions of the conformance model.

    Copied from one made once per process: MLflow's migrations and two model registrations take
    seconds, which every test of the suite would otherwise pay. The copies share the template's
    artifact files, which the tests only read.
    """
    from mltrack.config import settings as config

    global _store_template
    if _store_template is None or not _store_template.exists():
        template = Path(tempfile.mkdtemp(prefix="mltrack-conformance-")) / "template.db"
        atexit.register(shutil.rmtree, template.parent, True)
        monkeypatch.setenv("MLTRACK_TRACKING_URI", f"sqlite:///{template}")
        here = Path.cwd()
        os.chdir(template.parent)  # the Default experiment's artifact root is made where the store is
        try:
            config.reset_settings()
            store._stores.clear()
            for factor in (1, 2):
                mltrack.register_model(_ScaledSum(factor), MODEL_NAME)
        finally:
            os.chdir(here)
            config.reset_settings()
            store._stores.clear()
        _store_template = template
    shutil.copyfile(_store_template, folder / "conformance.db")
    return f"sqlite:///{folder / 'conformance.db'}"


class ProviderConformance:
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            overrides = name.startswith("test_") and hasattr(ProviderConformance, name)
            if overrides and not hasattr(value, "__mltrack_override__"):
                raise TypeError(
                    f"{cls.__name__}.{name} overrides a standard provider test; "
                    "mark it with @overrides_standard_test('reason') if that is deliberate"
                )

    # -- to implement --------------------------------------------------------------------

    def provider_class(self) -> type[DeployProvider[Any]]:
        raise NotImplementedError

    def valid_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        """Configs the provider must refuse, each with the field its error must name."""
        return []

    def remove_credentials(self) -> contextlib.AbstractContextManager[None] | None:
        """A context manager under which the provider has no credentials (None: it needs none)."""
        return None

    def target_snapshot(self, provider: DeployProvider[Any]) -> Any:
        """What exists on the target now (compared before and after to prove nothing was created)."""
        return sorted(str(status.details.get("name", status.url)) for status in provider.list())

    def deploy_timeout_s(self) -> float:
        return 300.0

    # -- fixtures -------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _conformance_store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        from mltrack.config import settings as config
        from mltrack.plugins import manager as plugins

        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("MLTRACK_DATA_DIR", str(tmp_path / ".mltrack"))
        cls = self.provider_class()
        # a module name of the provider name (which may hold dashes) that an entry point can load
        module = types.ModuleType("mltrack_conformance_" + "".join(c if c.isalnum() else "_" for c in cls.name))

        def register_deploy_providers(register: Any) -> None:
            register(cls)

        module.register_deploy_providers = mltrack.hookimpl(register_deploy_providers)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        entry = metadata.EntryPoint(name=f"conformance-{cls.name}", value=module.__name__, group="mltrack")
        # only the core and this provider: the provider's own plugin (if installed) would collide,
        # and a provider built into the core (``local``) needs no entry of its own
        manager = plugins.PluginManager(entry_points=[], strict=True)
        built_in = manager.registry("deploy_providers").get(cls.name)
        if built_in is None or built_in.obj is not cls:
            manager = plugins.PluginManager(entry_points=[entry], strict=True)
        monkeypatch.setattr(plugins, "_manager", manager)
        monkeypatch.setenv("MLTRACK_TRACKING_URI", _store_with_models(tmp_path, monkeypatch))
        config.reset_settings()
        store._stores.clear()
        yield

        for deployment in list_deployments():
            with contextlib.suppress(Exception):
                delete_deployment(deployment.id)
        config.reset_settings()
        store._stores.clear()

    # -- helpers --------------------------------------------------------------------------

    def provider(self) -> DeployProvider[Any]:
        return get_provider(self.provider_class().name)

    def deploy(self, version: int | str = "latest", config: dict[str, Any] | None = None) -> Any:
        return deploy(
            MODEL_NAME,
            version,
            self.provider_class().name,
            self.valid_config() if config is None else config,
            timeout=self.deploy_timeout_s(),
        )

    @staticmethod
    def expected(factor: int) -> list[float]:
        return [factor * (row["x"] + row["y"]) for row in ROWS]

    @staticmethod
    def as_list(predictions: Any) -> list[float]:
        if isinstance(predictions, dict) and "predictions" in predictions:
            predictions = predictions["predictions"]
        return [float(p) for p in predictions]

    # -- standard tests -------------------------------------------------------------------

    def test_the_provider_class_is_valid(self) -> None:
        assert validate_provider(self.provider_class()) == self.provider_class().name

    def test_the_valid_config_validates(self) -> None:
        validate_config(self.provider_class(), self.valid_config())

    def test_an_unknown_config_field_is_refused_and_nothing_is_created(self) -> None:
        before = self.target_snapshot(self.provider())
        with pytest.raises(InvalidInputError, match="not_a_setting"):
            self.deploy(config={**self.valid_config(), "not_a_setting": 1})
        assert list_deployments() == []
        assert self.target_snapshot(self.provider()) == before

    def test_invalid_configs_name_the_field(self) -> None:
        for config, field in self.invalid_configs():
            with pytest.raises(InvalidInputError) as caught:
                self.deploy(config={**self.valid_config(), **config})
            assert field in str(caught.value), f"the error for {config} does not name {field!r}: {caught.value}"

    def test_plan_has_no_side_effects(self) -> None:
        before = self.target_snapshot(self.provider())
        plan = plan_deployment(MODEL_NAME, 1, self.provider_class().name, self.valid_config())
        assert plan.actions and all(isinstance(a, str) and a for a in plan.actions)
        assert plan.model.version == 1 and plan.name == "conformance-model"
        assert list_deployments() == []
        assert self.target_snapshot(self.provider()) == before

    def test_deploy_predict_logs_and_delete(self) -> None:
        deployment = self.deploy(1)
        assert deployment.state is DeploymentState.READY, deployment.message
        assert deployment.url
        assert self.provider().status(deployment).state is DeploymentState.READY
        assert self.as_list(deployment.predict(ROWS)) == pytest.approx(self.expected(1))
        logs = deployment.logs(tail=20)
        assert isinstance(logs, list) and all(isinstance(line, str) for line in logs)
        assert delete_deployment(deployment.id).state is DeploymentState.DELETED
        assert delete_deployment(deployment.id).state is DeploymentState.DELETED  # idempotent
        assert get_deployment(deployment.id).state is DeploymentState.DELETED
        assert self.provider().status(get_deployment(deployment.id)).state is not DeploymentState.READY

    def test_redeploying_serves_the_new_version(self) -> None:
        self.deploy(1)
        second = self.deploy(2)
        assert second.state is DeploymentState.READY
        assert self.as_list(second.predict(ROWS)) == pytest.approx(self.expected(2))
        assert [(d.id, d.model_version) for d in list_deployments()] == [(second.id, 2)]

    def test_missing_credentials_raise_the_credentials_error_before_anything_is_created(self) -> None:
        from mltrack.config import settings as config

        without = self.remove_credentials()
        if without is None:
            pytest.skip(f"the {self.provider_class().name!r} provider needs no credentials")
        with without:
            config.reset_settings()
            with pytest.raises(CredentialsMissingError) as caught:
                self.deploy()
            assert caught.value.hint, "the credentials error must say what to set"
        assert list_deployments() == []
