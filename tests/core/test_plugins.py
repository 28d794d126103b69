"""Plugin discovery, isolation, provenance and the hook contract (DESIGN §2 and §3).

The installed fixture distributions are the real thing: ``mltrack-fixture-plugin``
(entry point ``fixture``) works, ``mltrack-fixture-broken`` holds ``broken-import``
(fails at import) and ``misspelled-hook`` (implements ``register_sinkz``). The CLI is run
in subprocesses so each test sees a fresh plugin manager built from its own environment.
Collisions and plugins that raise while registering use an in-memory manager whose entry
points name modules created in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy
import pytest
from conftest import run_cli, run_python
from pydantic import BaseModel

import mltrack
from mltrack import hookspecs
from mltrack.errors import PluginCollisionError, PluginError
from mltrack.extend import get_flavour
from mltrack.models.flavours import Flavour
from mltrack.plugins.manager import PluginManager, get_plugin_manager
from mltrack.storage.sinks import Sink

# Every installed plugin enabled, failures isolated (as a user's environment would be).
ALL_ENABLED = {"MLTRACK_DISABLE_PLUGINS": "", "MLTRACK_STRICT_PLUGINS": "0"}

DESIGN_HOOKS = {
    "register_settings",
    "register_flavours",
    "infer_flavour",
    "register_autologgers",
    "register_deploy_providers",
    "register_sinks",
    "run_context_tags",
    "on_run_start",
    "on_run_end",
    "register_commands",
}


def listed_plugins(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``mltrack plugins --json`` under ``env``, keyed by plugin name."""
    result = run_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {plugin["name"]: plugin for plugin in json.loads(result.stdout)}


def in_memory_plugin(monkeypatch: pytest.MonkeyPatch, name: str, **hooks: Callable[..., Any]) -> metadata.EntryPoint:
    """An entry point named ``name`` whose module implements ``hooks`` (hook name -> function)."""
    module = types.ModuleType(f"mltrack_test_plugin_{name.replace('-', '_')}")
    for hook_name, function in hooks.items():
        setattr(module, hook_name, mltrack.hookimpl(function))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return metadata.EntryPoint(name=name, value=module.__name__, group="mltrack")


class Named(Sink):
    """A registrable sink: registries key objects by their ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def log_batch(self, batch: Any) -> None:
        pass


class NamedFlavour(Flavour):
    def __init__(self, name: str) -> None:
        self.name = name

    def can_handle(self, model: Any) -> bool:
        return False

    def save(self, model: Any, path: Path, **kwargs: Any) -> None:  # type: ignore[override]
        raise NotImplementedError

    def load(self, path: Path) -> Any:
        raise NotImplementedError

    def requirements(self, model: Any) -> list[str]:
        return []


def named(kind: str, name: str) -> Any:
    """An object of ``kind`` that passes that registry's validator, called ``name``."""
    if kind == "flavours":
        return NamedFlavour(name)
    if kind == "deploy_providers":
        from mltrack.deployment.local_provider import LocalProvider

        return type(f"Provider_{name}", (LocalProvider,), {"name": name})
    return Named(name)


def registers(*objects: Any) -> Callable[[Callable[[Any], None]], None]:
    """A registration hook implementation that registers ``objects``."""

    def hook(register: Callable[[Any], None]) -> None:
        for obj in objects:
            register(obj)

    return hook


def raises(message: str) -> Callable[[Callable[[Any], None]], None]:
    """A registration hook implementation that fails."""

    def hook(register: Callable[[Any], None]) -> None:
        raise RuntimeError(message)

    return hook


class CalmSettings(BaseModel):
    level: int = 1


# -- `mltrack plugins` with the installed fixture distributions ---------------------------


def test_plugins_json_lists_the_builtin_plugin() -> None:
    builtin = listed_plugins(ALL_ENABLED)["mltrack"]
    assert builtin["status"] == "builtin"
    assert builtin["distribution"] == "mltrack-core"
    assert builtin["version"] == mltrack.__version__
    assert builtin["reason"] is None


def test_plugins_json_lists_a_working_plugin_as_loaded_with_its_contributions() -> None:
    fixture = listed_plugins(ALL_ENABLED)["fixture"]
    assert fixture == {
        "name": "fixture",
        "distribution": "mltrack-fixture-plugin",
        "version": "0.1.0",
        "status": "loaded",
        "reason": None,
        "hooks": ["register_commands", "register_settings", "register_sinks", "run_context_tags"],
        "contributes": {"commands": ["fixture-hello"], "settings": ["fixture"]},
    }


def test_plugins_json_lists_the_sinks_a_plugin_registers() -> None:
    env = {**ALL_ENABLED, "MLTRACK_FIXTURE_SINK_PATH": "sink.jsonl"}
    assert listed_plugins(env)["fixture"]["contributes"]["sinks"] == ["fixture-jsonl"]


def test_plugin_that_fails_to_import_is_failed_with_a_one_line_reason_naming_the_missing_module() -> None:
    broken = listed_plugins(ALL_ENABLED)["broken-import"]
    assert broken["status"] == "failed"
    assert broken["distribution"] == "mltrack-fixture-broken"
    assert "\n" not in broken["reason"]
    assert "ModuleNotFoundError" in broken["reason"]
    assert "mltrack_dependency_that_does_not_exist" in broken["reason"]
    assert broken["contributes"] == {}


def test_plugin_implementing_an_unknown_hook_is_failed_naming_the_hook() -> None:
    misspelled = listed_plugins(ALL_ENABLED)["misspelled-hook"]
    assert misspelled["status"] == "failed"
    assert misspelled["reason"] == "implements unknown hook(s) register_sinkz"
    assert misspelled["contributes"] == {}


def test_plugins_command_succeeds_and_warns_while_plugins_are_broken() -> None:
    result = run_cli("plugins", env=ALL_ENABLED)
    assert result.returncode == 0, result.stderr
    assert "broken-import" in result.stdout
    assert "failed" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert any("'broken-import'" in line for line in warnings)
    assert any("'misspelled-hook'" in line for line in warnings)


def test_other_commands_keep_working_while_plugins_are_broken() -> None:
    result = run_cli("fixture-hello", env=ALL_ENABLED)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello, world!\n"


def test_disabled_plugin_is_listed_as_disabled_with_the_reason() -> None:
    env = {"MLTRACK_DISABLE_PLUGINS": "fixture", "MLTRACK_STRICT_PLUGINS": "0"}
    fixture = listed_plugins(env)["fixture"]
    assert fixture["status"] == "disabled"
    assert fixture["reason"] == "disabled by MLTRACK_DISABLE_PLUGINS"
    assert fixture["contributes"] == {}


def test_disabled_plugin_adds_no_command() -> None:
    env = {"MLTRACK_DISABLE_PLUGINS": "fixture", "MLTRACK_STRICT_PLUGINS": "0"}
    result = run_cli("fixture-hello", env=env)
    assert result.returncode == 2
    assert "No such command 'fixture-hello'" in result.stderr
    assert "fixture-hello" not in run_cli("--help", env=env).stdout


def test_disable_list_accepts_a_distribution_name() -> None:
    # Strict mode stays on: success proves neither broken entry point was imported.
    listed = listed_plugins({"MLTRACK_DISABLE_PLUGINS": "mltrack-fixture-broken", "MLTRACK_STRICT_PLUGINS": "1"})
    assert listed["broken-import"]["status"] == "disabled"
    assert listed["misspelled-hook"]["status"] == "disabled"
    assert listed["fixture"]["status"] == "loaded"


def test_load_plugins_allow_list_loads_only_the_listed_plugins() -> None:
    listed = listed_plugins({"MLTRACK_LOAD_PLUGINS": "fixture", "MLTRACK_DISABLE_PLUGINS": ""})
    assert listed["fixture"]["status"] == "loaded"
    for name in ("broken-import", "misspelled-hook"):
        assert listed[name]["status"] == "disabled"
        assert listed[name]["reason"] == "not listed in MLTRACK_LOAD_PLUGINS"


def test_empty_load_plugins_loads_no_plugin_but_keeps_the_builtin() -> None:
    listed = listed_plugins({"MLTRACK_LOAD_PLUGINS": "", "MLTRACK_DISABLE_PLUGINS": ""})
    assert listed["mltrack"]["status"] == "builtin"
    others = {name: p["status"] for name, p in listed.items() if name != "mltrack"}
    assert {"fixture", "broken-import", "misspelled-hook"} <= set(others)
    assert set(others.values()) == {"disabled"}  # every installed plugin, in-repo ones included


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("broken-import", "mltrack_dependency_that_does_not_exist"),
        ("misspelled-hook", "register_sinkz"),
    ],
)
def test_strict_mode_fails_the_plugins_command_with_one_line_naming_the_broken_plugin(broken: str, reason: str) -> None:
    other = "misspelled-hook" if broken == "broken-import" else "broken-import"
    result = run_cli("plugins", env={"MLTRACK_DISABLE_PLUGINS": other, "MLTRACK_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"Error: plugin {broken!r} failed: ")
    assert reason in errors[0]
    assert "Traceback" not in result.stderr


def test_plugins_are_not_loaded_by_import_mltrack() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "print(json.dumps(sorted(m for m in ('mltrack_fixture', 'mlflow', 'pydantic') if m in sys.modules)))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_plugins_are_loaded_on_first_use_not_when_the_manager_is_created() -> None:
    result = run_python(
        "import sys, mltrack\n"
        "manager = mltrack.get_plugin_manager()\n"
        "print('mltrack_fixture' in sys.modules)\n"
        "manager.load()\n"
        "print('mltrack_fixture' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_cli_help_imports_neither_mlflow_nor_pydantic() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in ('mlflow', 'pydantic') if m in sys.modules)))"
    )
    assert result.returncode == 0, result.stderr
    assert "fixture-hello" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1]) == []


# -- provenance ----------------------------------------------------------------------------


def test_registered_settings_are_stamped_with_the_plugin_that_registered_them() -> None:
    from mltrack_fixture.settings import FixtureSettings

    contribution = get_plugin_manager().registry("settings")["fixture"]
    assert contribution.plugin == "fixture"
    assert contribution.obj is FixtureSettings


def test_registered_objects_are_keyed_by_name_and_stamped_with_their_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = Named("metrics-bus")
    manager = PluginManager(entry_points=[in_memory_plugin(monkeypatch, "bus", register_sinks=registers(sink))])
    contribution = manager.registry("sinks")["metrics-bus"]
    assert contribution.plugin == "bus"
    assert contribution.obj is sink
    assert manager.get("sinks", "metrics-bus") is sink


# -- collisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "hook"),
    [("sinks", "register_sinks"), ("flavours", "register_flavours"), ("deploy_providers", "register_deploy_providers")],
)
def test_two_plugins_registering_the_same_name_collide_when_it_is_looked_up(
    monkeypatch: pytest.MonkeyPatch, kind: str, hook: str
) -> None:
    manager = PluginManager(
        entry_points=[
            in_memory_plugin(monkeypatch, "alpha", **{hook: registers(named(kind, "shared"))}),
            in_memory_plugin(monkeypatch, "beta", **{hook: registers(named(kind, "shared"))}),
        ]
    )
    with pytest.raises(PluginCollisionError) as caught:
        manager.get(kind, "shared")
    assert "'alpha'" in caught.value.message
    assert "'beta'" in caught.value.message
    assert "shared" in caught.value.message
    assert caught.value.hint is not None
    assert "MLTRACK_DISABLE_PLUGINS" in caught.value.hint


def test_a_collision_leaves_the_other_names_of_both_plugins_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    only_alpha, only_beta = Named("only-alpha"), Named("only-beta")
    manager = PluginManager(
        entry_points=[
            in_memory_plugin(monkeypatch, "alpha", register_sinks=registers(Named("shared"), only_alpha)),
            in_memory_plugin(monkeypatch, "beta", register_sinks=registers(Named("shared"), only_beta)),
        ]
    )
    assert manager.get("sinks", "only-alpha") is only_alpha
    assert manager.get("sinks", "only-beta") is only_beta
    assert sorted(manager.collisions("sinks")["shared"]) == ["alpha", "beta"]


def test_strict_mode_raises_the_collision_when_collecting(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = PluginManager(
        strict=True,
        entry_points=[
            in_memory_plugin(monkeypatch, "alpha", register_flavours=registers(NamedFlavour("shared"))),
            in_memory_plugin(monkeypatch, "beta", register_flavours=registers(NamedFlavour("shared"))),
        ],
    )
    with pytest.raises(PluginCollisionError, match=r"'shared'.*'(alpha|beta)' and '(alpha|beta)'"):
        manager.registry("flavours")


# -- a plugin that raises or registers something invalid ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "hook", "calm_object"),
    [("settings", "register_settings", CalmSettings), ("sinks", "register_sinks", Named("calm-sink"))],
)
def test_plugin_raising_in_a_registration_hook_is_failed_and_others_are_unaffected(
    monkeypatch: pytest.MonkeyPatch, kind: str, hook: str, calm_object: Any
) -> None:
    manager = PluginManager(
        entry_points=[
            in_memory_plugin(monkeypatch, "exploding", **{hook: raises("registration exploded")}),
            in_memory_plugin(monkeypatch, "calm", **{hook: registers(calm_object)}),
        ]
    )
    registry = manager.registry(kind)
    assert [c.plugin for c in registry.values()] == ["calm"]
    exploding, calm = manager.info("exploding"), manager.info("calm")
    assert exploding is not None and calm is not None
    assert exploding.status == "failed"
    assert exploding.reason == f"{hook} raised RuntimeError: registration exploded"
    assert calm.status == "loaded"


def test_plugin_failed_while_registering_is_skipped_by_later_hook_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def tags(run: Any) -> dict[str, str]:
        return {"seen": "yes"}

    manager = PluginManager(
        entry_points=[
            in_memory_plugin(monkeypatch, "exploding", register_sinks=raises("boom"), run_context_tags=tags),
            in_memory_plugin(monkeypatch, "calm", run_context_tags=tags),
        ]
    )
    manager.registry("sinks")
    callers = [plugin for plugin, _ in manager.call_each("run_context_tags", run=None)]
    assert "calm" in callers
    assert "exploding" not in callers


def test_strict_mode_raises_when_a_plugin_raises_in_a_registration_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = PluginManager(
        strict=True,
        entry_points=[in_memory_plugin(monkeypatch, "exploding", register_settings=raises("registration exploded"))],
    )
    with pytest.raises(PluginError, match="plugin 'exploding' failed: register_settings raised RuntimeError"):
        manager.registry("settings")


def test_strict_mode_fails_every_later_use_and_the_listing_when_a_registration_hook_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manager = PluginManager(
        strict=True,
        entry_points=[in_memory_plugin(monkeypatch, "exploding", register_sinks=raises("registration exploded"))],
    )
    for use in (lambda: manager.registry("sinks"), manager.plugin_infos, lambda: manager.registry("flavours")):
        with pytest.raises(PluginError, match="plugin 'exploding' failed: register_sinks raised RuntimeError"):
            use()


def test_registering_an_object_without_a_name_fails_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = PluginManager(
        entry_points=[in_memory_plugin(monkeypatch, "nameless", register_sinks=registers(Named("")))]
    )
    assert manager.registry("sinks") == {}
    info = manager.info("nameless")
    assert info is not None
    assert info.status == "failed"
    assert info.reason is not None
    assert "has an empty `name`" in info.reason


def test_registering_settings_that_are_not_a_pydantic_model_fails_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = PluginManager(entry_points=[in_memory_plugin(monkeypatch, "loose", register_settings=registers(dict))])
    assert manager.registry("settings") == {}
    info = manager.info("loose")
    assert info is not None
    assert info.status == "failed"
    assert info.reason is not None
    assert "not a pydantic model" in info.reason


# -- the hook contract -------------------------------------------------------------------------


def hookspecs_by_name() -> dict[str, pluggy.HookspecOpts]:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return {
        name: caller.spec.opts
        for name, caller in vars(manager.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None
    }


def test_hookspecs_are_exactly_the_hooks_of_the_design_table() -> None:
    assert set(hookspecs_by_name()) == DESIGN_HOOKS


@pytest.mark.parametrize("name", sorted(DESIGN_HOOKS))
def test_every_hookspec_has_a_docstring(name: str) -> None:
    doc = getattr(hookspecs, name).__doc__
    assert doc is not None
    assert doc.strip()


def test_only_infer_flavour_is_firstresult() -> None:
    firstresult = {name for name, opts in hookspecs_by_name().items() if opts["firstresult"]}
    assert firstresult == {"infer_flavour"}


# -- plugin switches from configuration files, wrappers, plugin-declared hooks ---------------


def test_disable_plugins_in_mltrack_toml_is_applied(tmp_path: Any) -> None:
    (tmp_path / "mltrack.toml").write_text('disable_plugins = ["fixture", "broken-import", "misspelled-hook"]\n')
    env = {k: v for k, v in os.environ.items() if k != "MLTRACK_DISABLE_PLUGINS"}
    mltrack_cli = Path(sys.executable).parent / "mltrack"
    done = subprocess.run(
        [str(mltrack_cli), "plugins", "--json"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    assert plugins["fixture"]["status"] == "disabled"
    assert plugins["broken-import"]["status"] == "disabled"


def test_configure_disable_plugins_takes_effect() -> None:
    assert get_plugin_manager().info("fixture").status == "loaded"  # type: ignore[union-attr]
    # an argument beats the environment, so the broken fixtures must be listed again
    mltrack.configure(disable_plugins=["fixture", "broken-import", "misspelled-hook"])
    assert get_plugin_manager().info("fixture").status == "disabled"  # type: ignore[union-attr]


def test_wrapper_implementations_fail_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("mltrack_test_plugin_wrapper")

    def on_run_start(run: Any) -> Any:
        yield

    module.on_run_start = mltrack.hookimpl(wrapper=True)(on_run_start)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ep = metadata.EntryPoint(name="wrapping", value=module.__name__, group="mltrack")
    manager = PluginManager(entry_points=[ep])
    manager.load()
    info = manager.info("wrapping")
    assert info is not None and info.status == "failed"
    assert "wrapper" in (info.reason or "")


def test_a_plugin_can_declare_hooks_that_another_implements(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = types.ModuleType("mltrack_test_ui_specs")

    @pluggy.HookspecMarker("mltrack")
    def ui_panels(register: Any) -> None:
        """Panels for the run page."""

    specs.ui_panels = ui_panels  # type: ignore[attr-defined]
    provider = types.ModuleType("mltrack_test_ui")
    provider.mltrack_hookspecs = specs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, provider.__name__, provider)
    # "a-user" sorts before "ui": it implements the hook before the UI declares it
    user = in_memory_plugin(monkeypatch, "a-user", ui_panels=lambda register: register(Named("summary")))
    ui = metadata.EntryPoint(name="ui", value=provider.__name__, group="mltrack")
    manager = PluginManager(entry_points=[user, ui])
    manager.load()
    assert manager.info("a-user").status == "loaded"  # type: ignore[union-attr]
    results = list(manager.call_each("ui_panels", register=lambda obj: None))
    assert [plugin for plugin, _ in results] == ["a-user"]


def test_the_development_environment_has_no_test_plugins_and_passes_strict_mode() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLTRACK_DISABLE_PLUGINS")}
    mltrack_cli = str(Path(sys.executable).parent / "mltrack")
    result = subprocess.run(
        [mltrack_cli, "plugins", "--json"],
        capture_output=True,
        text=True,
        env={**env, "MLTRACK_STRICT_PLUGINS": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    names = {p["name"] for p in json.loads(result.stdout)}
    assert not names & {"fixture", "broken-import", "misspelled-hook"}


# -- one registry mechanism ---------------------------------------------------------------------


def test_each_registration_hook_runs_once_whoever_asks_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def register_flavours(register: Callable[[Any], None]) -> None:
        calls.append("flavours")
        register(NamedFlavour("counted"))

    manager = PluginManager(
        entry_points=[in_memory_plugin(monkeypatch, "counting", register_flavours=register_flavours)]
    )
    monkeypatch.setattr("mltrack.plugins.manager._manager", manager)
    manager.plugin_infos()  # what `mltrack plugins` does
    assert get_flavour("counted").name == "counted"  # a model lookup
    manager.plugin_infos()
    assert calls == ["flavours"]


@pytest.mark.parametrize(
    ("kind", "noun", "known", "extra"),
    [
        ("flavours", "flavour", "xgboost-ish", None),
        ("flavours", "flavour", "torch", "torch"),
        ("autologgers", "autologger", "langchain", "langchain"),
        ("deploy_providers", "deploy provider", "sagemaker", "sagemaker"),
        ("sinks", "sink", "kafka", None),
    ],
)
def test_an_unknown_name_gets_the_same_error_for_every_kind(
    kind: str, noun: str, known: str, extra: str | None
) -> None:
    manager = PluginManager(entry_points=[])
    with pytest.raises(PluginError) as caught:
        manager.lookup(kind, known)
    assert caught.value.message.startswith(f"no {noun} named {known!r}; installed ")
    assert caught.value.hint is not None
    if extra:
        assert f'"mltrack[{extra}]==' in caught.value.hint
    else:
        assert "`mltrack plugins`" in caught.value.hint
