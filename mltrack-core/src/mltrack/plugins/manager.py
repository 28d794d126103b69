"""Plugin discovery and isolation on pluggy.

Plugins are found through the ``mltrack`` entry-point group and loaded lazily, the
first time something needs them, each inside its own try/except: a plugin that fails
to import, implements an unknown hook or raises while registering is marked
``failed`` with a one-line reason and everything else keeps working. Under
``MLTRACK_STRICT_PLUGINS=1`` (the project's own tests) every such failure raises
``PluginError``, and so does every later use of that manager.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from mltrack import hookspecs, process_state
from mltrack._version import __version__
from mltrack.config.files import any_config_file
from mltrack.errors import ConfigError, PluginCollisionError, PluginError
from mltrack.plugins.install_hint import install_hint

if TYPE_CHECKING:
    from mltrack.storage.sinks import Sink

# click and the settings (pydantic) are imported inside functions: `import mltrack` and `mltrack --help` must not load
# pydantic (benchmarks/import_time.py).

logger = logging.getLogger("mltrack.plugins")

ENTRY_POINT_GROUP = "mltrack"
BUILTIN_PLUGIN = "mltrack"
BUILTIN_PLUGIN_MODULE = "mltrack.builtin_plugin"

Validator = Callable[[Any], str]
"""Checks a registered object; returns its registry name or raises ``PluginError``."""


@dataclass(frozen=True)
class RegistryKind:
    """One kind of thing plugins register: the hook that fills it, what it must be, and what
    to install when a name is missing."""

    hook: str
    #: what a registered object must be (for messages and docs)
    base: str
    #: "module:function" of the validator; resolved when the kind is first collected, so this
    #: table needs no import of the modules that define the contract types
    validator: str | None
    #: the singular noun in messages ("no deploy provider named 'x'")
    noun: str
    #: what follows "installed" in that message ("installed providers: local, modal")
    plural: str
    #: names our own plugins provide -> the extra that installs them (None: built in)
    known: dict[str, str | None] = field(default_factory=dict)


# Every registry kind. Commands are collected separately because click owns them.
REGISTRY_KINDS: dict[str, RegistryKind] = {
    "settings": RegistryKind(
        "register_settings", "a pydantic model class", None, "settings section", "settings sections"
    ),
    "flavours": RegistryKind(
        "register_flavours",
        "a mltrack.Flavour instance",
        "mltrack.models.flavours:validate_flavour",
        "flavour",
        "flavours",
        {"python": None, "sklearn": "sklearn", "torch": "torch", "langchain": "langchain"},
    ),
    "autologgers": RegistryKind(
        "register_autologgers",
        "a mltrack.Autologger instance",
        "mltrack.tracking.autologging:validate_autologger",
        "autologger",
        "autologgers",
        {"sklearn": "sklearn", "torch": "torch", "langchain": "langchain"},
    ),
    "deploy_providers": RegistryKind(
        "register_deploy_providers",
        "a mltrack.DeployProvider subclass",
        "mltrack.deployment.providers:validate_provider",
        "deploy provider",
        "providers",
        {"local": None, "modal": "modal", "sagemaker": "sagemaker"},
    ),
    "sinks": RegistryKind(
        "register_sinks", "a mltrack.Sink instance", "mltrack.storage.sinks:validate_sink", "sink", "sinks"
    ),
}

# kind -> the registration hook that fills it
REGISTRATION_HOOKS: dict[str, str] = {kind: entry.hook for kind, entry in REGISTRY_KINDS.items()}


def _kind_validator(kind: str) -> Validator:
    path = REGISTRY_KINDS[kind].validator
    if path is None:
        return _default_validator(kind)
    module, _, attr = path.partition(":")
    validator: Validator = getattr(importlib.import_module(module), attr)
    return validator


def unknown_name_error(kind: str, name: str, installed: list[str]) -> PluginError:
    """The one error for a name nothing registered as ``kind``, with what to install."""

    entry = REGISTRY_KINDS[kind]
    extra = entry.known.get(name)
    hint = install_hint(extra) if extra else "install the plugin that provides it (`mltrack plugins` lists them)"
    listed = ", ".join(sorted(installed)) or "(none)"
    return PluginError(f"no {entry.noun} named {name!r}; installed {entry.plural}: {listed}", hint=hint)


@dataclass
class PluginInfo:
    """What ``mltrack plugins`` reports about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # builtin | loaded | failed | disabled
    reason: str | None = None
    hooks: list[str] = field(default_factory=list)
    contributes: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "hooks": sorted(self.hooks),
            "contributes": {k: sorted(v) for k, v in sorted(self.contributes.items()) if v},
        }


@dataclass(frozen=True)
class Contribution:
    """An object a plugin registered, stamped with that plugin's name."""

    kind: str
    name: str
    obj: Any
    plugin: str


def _split_names(raw: str | None) -> set[str] | None:
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _default_validator(kind: str) -> Validator:
    def validate(obj: Any) -> str:
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{kind} object {obj!r} has no string `name` attribute")
        return name

    return validate


class PluginManager:
    """MLTrack's plugin manager: discovery, isolation, provenance and registries."""

    def __init__(
        self,
        *,
        disabled: set[str] | None = None,
        allowed: set[str] | None = None,
        strict: bool = False,
        debug: bool = False,
        entry_points: list[metadata.EntryPoint] | None = None,
    ) -> None:
        self.disabled = disabled or set()
        self.allowed = allowed
        self.strict = strict
        self.debug = debug
        self._entry_points = entry_points
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._loaded = False
        self._lock = threading.RLock()
        self._registries: dict[str, dict[str, Contribution]] = {}
        self._collisions: dict[str, dict[str, list[str]]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._modules: dict[str, Any] = {}
        # strict mode: the first plugin failure, raised again by every later use of the manager
        self._strict_failure: PluginError | None = None

    @classmethod
    def from_environment(cls) -> PluginManager:
        """Build a manager from ``MLTRACK_DISABLE_PLUGINS``/``LOAD_PLUGINS``/``STRICT_PLUGINS``."""
        return cls(
            disabled=_split_names(os.environ.get("MLTRACK_DISABLE_PLUGINS")),
            allowed=_split_names(os.environ.get("MLTRACK_LOAD_PLUGINS")),
            strict=_env_flag("MLTRACK_STRICT_PLUGINS"),
            debug=_env_flag("MLTRACK_DEBUG"),
        )

    # -- loading -------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        self.load()
        return self._pm.hook

    def load(self) -> None:
        """Register the built-in plugin and every enabled entry point (idempotent)."""
        with self._lock:
            if self._strict_failure is not None:
                raise self._strict_failure
            if self._loaded:
                return
            self._loaded = True
            if self.debug:
                self._pm.trace.root.setwriter(sys.stderr.write)
                self._pm.enable_tracing()
            # by module name, like an entry point: the built-in plugin implements hooks with the
            # tracking, model and deployment modules, all above this manager (no import cycle)
            builtin_plugin = importlib.import_module(BUILTIN_PLUGIN_MODULE)
            self._pm.register(builtin_plugin, name=BUILTIN_PLUGIN)
            self._infos[BUILTIN_PLUGIN] = PluginInfo(
                name=BUILTIN_PLUGIN,
                distribution="mltrack-core",
                version=_own_version(),
                status="builtin",
                hooks=self._hook_names(builtin_plugin),
            )
            for ep in self._discover():
                self._load_entry_point(ep)
            # Checked once all are registered, so a plugin may implement hooks that a
            # later-loaded plugin declares (through its ``mltrack_hookspecs`` attribute).
            for name, module in self._modules.items():
                self._check_hooks(name, module)

    def _discover(self) -> list[metadata.EntryPoint]:
        if self._entry_points is not None:
            return list(self._entry_points)
        return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)

    def _is_enabled(self, name: str, dist: str | None) -> tuple[bool, str | None]:
        names = {name} | ({dist} if dist else set())
        if names & self.disabled:
            return False, "disabled by MLTRACK_DISABLE_PLUGINS"
        if self.allowed is not None and not names & self.allowed:
            return False, "not listed in MLTRACK_LOAD_PLUGINS"
        return True, None

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        dist_name = dist.name if dist is not None else None
        version = dist.version if dist is not None else None
        info = PluginInfo(name=ep.name, distribution=dist_name, version=version, status="loaded")
        enabled, why = self._is_enabled(ep.name, dist_name)
        if not enabled:
            info.status, info.reason = "disabled", why
            self._infos.setdefault(ep.name, info)
            self._pm.set_blocked(ep.name)
            return
        if ep.name in self._infos:
            other = self._infos[ep.name]
            info.status, info.reason = (
                "failed",
                f"plugin name {ep.name!r} is already used by {other.distribution or other.name}",
            )
            self._infos[f"{ep.name} ({dist_name})"] = info
            self._fail(info, PluginCollisionError(info.reason))
            return
        self._infos[ep.name] = info
        try:
            module = ep.load()
            extra_specs = getattr(module, "mltrack_hookspecs", None)
            if extra_specs is not None:
                self._pm.add_hookspecs(extra_specs)
            self._pm.register(module, name=ep.name)
        except Exception as exc:  # isolation: a broken plugin must not break the core
            info.status, info.reason = "failed", f"could not load {ep.value}: {_one_line(exc)}"
            self._fail(info, exc)
            return
        info.hooks = self._hook_names(module)
        self._modules[ep.name] = module

    def _check_hooks(self, name: str, module: Any) -> None:
        """Fail a plugin that implements a hook nobody declared, or uses a wrapper."""
        info = self._infos[name]
        callers = self._pm.get_hookcallers(module) or []
        unknown = [
            caller.name
            for caller in callers
            if not caller.has_spec() and not any(impl.optionalhook for impl in caller.get_hookimpls())
        ]
        wrappers = [
            caller.name
            for caller in callers
            for impl in caller.get_hookimpls()
            if impl.plugin_name == name and (impl.wrapper or impl.hookwrapper)
        ]
        if unknown:
            info.reason = f"implements unknown hook(s) {', '.join(sorted(unknown))}"
        elif wrappers:
            info.reason = (
                f"uses wrapper implementations for {', '.join(sorted(wrappers))}; MLTrack calls each "
                "implementation on its own, so wrapper=True/hookwrapper=True is not supported"
            )
        else:
            return
        self._pm.unregister(module)
        info.status = "failed"
        self._fail(info, PluginError(f"plugin {name!r} {info.reason}"))

    def _hook_names(self, module: Any) -> list[str]:
        return sorted(caller.name for caller in self._pm.get_hookcallers(module) or [])

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        if self.strict:
            # every failure alike (import, unknown hook, a registration hook that raises), and for
            # good: a later use must not go on as if the failed plugin had never been there
            failure = PluginError(f"plugin {info.name!r} failed: {info.reason}")
            failure.__cause__ = exc
            self._strict_failure = failure
            raise failure
        logger.warning("mltrack plugin %r %s: %s", info.name, info.status, info.reason)

    # -- calling hooks with provenance and isolation ------------------------------

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        self.load()
        caller = getattr(self._pm.hook, hook_name)
        # pluggy calls implementations last-registered first; keep that order.
        return list(reversed(caller.get_hookimpls()))

    def call_each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call every live implementation of a hook, yielding ``(plugin, result)``.

        A plugin that raises is reported (and skipped) instead of breaking the caller.
        """
        for impl in self._impls(hook_name):
            if self._is_failed(impl.plugin_name):
                continue
            args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
            self._trace(hook_name, impl.plugin_name)
            try:
                result = impl.function(**args)
            except Exception as exc:
                self._report_hook_error(impl.plugin_name, hook_name, exc)
                continue
            yield impl.plugin_name, result

    def first_result(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook with isolation; the first non-None answer wins."""
        for _plugin, result in self.call_each(hook_name, **kwargs):
            if result is not None:
                return result
        return None

    def _trace(self, hook_name: str, plugin: str) -> None:
        # MLTrack calls each implementation itself (for provenance and isolation), so
        # pluggy's tracer never sees these calls: trace them here under MLTRACK_DEBUG.
        if self.debug:
            sys.stderr.write(f"mltrack hook {hook_name} -> plugin {plugin!r}\n")

    def _is_failed(self, plugin: str) -> bool:
        info = self._infos.get(plugin)
        return info is not None and info.status == "failed"

    def _report_hook_error(self, plugin: str, hook_name: str, exc: Exception) -> None:
        if self.strict:
            raise PluginError(f"plugin {plugin!r} raised in {hook_name}: {_one_line(exc)}") from exc
        if (plugin, hook_name) not in self._warned:
            self._warned.add((plugin, hook_name))
            logger.warning("mltrack plugin %r raised in %s: %s", plugin, hook_name, _one_line(exc))

    # -- registries -----------------------------------------------------------------

    def add_hookspecs(self, module_or_class: Any) -> None:
        """Declare more hooks (a plugin that offers its own extension points)."""
        self._pm.add_hookspecs(module_or_class)

    def registry(self, kind: str) -> dict[str, Contribution]:
        """Everything registered as ``kind``, by name (collected on first use)."""
        with self._lock:
            if kind not in self._registries:
                self._registries[kind] = self._collect(kind)
            return self._registries[kind]

    def lookup(self, kind: str, name: str) -> Any:
        """The object registered as ``kind`` under ``name``; an unknown name raises the one
        ``PluginError`` for it, naming what is installed and what to install."""
        registry = self.registry(kind)
        if name not in registry and name not in self._collisions.get(kind, {}):
            raise unknown_name_error(kind, name, list(registry))
        return self.get(kind, name)

    def objects(self, kind: str) -> dict[str, Any]:
        """Every object registered as ``kind``, by name."""
        return {name: c.obj for name, c in self.registry(kind).items()}

    def _collect(self, kind: str) -> dict[str, Contribution]:
        hook_name = REGISTRATION_HOOKS[kind]
        validate = _kind_validator(kind)
        found: dict[str, Contribution] = {}
        collisions: dict[str, list[str]] = {}
        for impl in self._impls(hook_name):
            plugin = impl.plugin_name
            if self._is_failed(plugin):
                continue
            mine: list[Contribution] = []

            def register(obj: Any, _plugin: str = plugin, _mine: list[Contribution] = mine) -> None:
                name = _plugin if kind == "settings" else validate(obj)
                if kind == "settings":
                    validate_settings_model(obj, _plugin)
                _mine.append(Contribution(kind, name, obj, _plugin))

            self._trace(hook_name, plugin)
            try:
                impl.function(**({"register": register} if "register" in impl.argnames else {}))
            except Exception as exc:
                info = self._infos[plugin]
                info.status = "failed"
                info.reason = f"{hook_name} raised {_one_line(exc)}"
                self._fail(info, exc)
                continue
            for contribution in mine:
                previous = found.get(contribution.name)
                if previous is not None and previous.plugin != contribution.plugin:
                    owners = collisions.setdefault(contribution.name, [previous.plugin])
                    owners.append(contribution.plugin)
                    if self.strict:
                        self._strict_failure = PluginCollisionError(_collision_message(kind, contribution.name, owners))
                        raise self._strict_failure
                    logger.warning(_collision_message(kind, contribution.name, owners))
                    continue
                found[contribution.name] = contribution
        self._collisions[kind] = collisions
        return found

    def get(self, kind: str, name: str) -> Any:
        """The object registered as ``kind`` under ``name``.

        Raises ``PluginCollisionError`` naming both plugins if two claimed the name,
        and ``KeyError`` if none did.
        """
        registry = self.registry(kind)
        owners = self._collisions.get(kind, {}).get(name)
        if owners:
            raise PluginCollisionError(
                _collision_message(kind, name, owners),
                hint=f"disable one of them with MLTRACK_DISABLE_PLUGINS={owners[-1]}",
            )
        return registry[name].obj

    def collisions(self, kind: str) -> dict[str, list[str]]:
        self.registry(kind)
        return dict(self._collisions.get(kind, {}))

    # -- reporting ------------------------------------------------------------------

    def plugin_commands(self) -> dict[str, dict[str, Any]]:
        """The click commands each plugin adds, by plugin (built on a scratch group so
        a plugin cannot replace another's command)."""
        import click

        result: dict[str, dict[str, Any]] = {}
        for impl in self._impls("register_commands"):
            if self._is_failed(impl.plugin_name):
                continue
            scratch = click.Group("scratch")
            self._trace("register_commands", impl.plugin_name)
            try:
                impl.function(**({"cli": scratch} if "cli" in impl.argnames else {}))
            except Exception as exc:
                self._report_hook_error(impl.plugin_name, "register_commands", exc)
                continue
            result[impl.plugin_name] = dict(scratch.commands)
        return result

    def plugin_infos(self) -> list[PluginInfo]:
        """Every known plugin with its status and contributions (never raises for a
        broken plugin)."""
        self.load()
        for info in self._infos.values():
            info.contributes = {}
        for kind in REGISTRATION_HOOKS:
            try:
                registry = self.registry(kind)
            except PluginError:
                if self.strict:
                    raise
                continue
            for contribution in registry.values():
                self._infos[contribution.plugin].contributes.setdefault(kind, []).append(contribution.name)
            for name, owners in self._collisions.get(kind, {}).items():
                for owner in owners[1:]:
                    info = self._infos[owner]
                    info.reason = _collision_message(kind, name, owners)
        for plugin, commands in self.plugin_commands().items():
            self._infos[plugin].contributes["commands"] = sorted(commands)
        return sorted(self._infos.values(), key=lambda i: (i.status != "builtin", i.name))

    def loaded_infos(self) -> list[PluginInfo]:
        """Every known plugin and its status, without collecting contributions."""
        self.load()
        return list(self._infos.values())

    def info(self, name: str) -> PluginInfo | None:
        self.load()
        return self._infos.get(name)


def _collision_message(kind: str, name: str, owners: list[str]) -> str:
    singular = kind.rstrip("s").replace("_", " ")
    who = " and ".join(repr(o) for o in owners)
    return f"{singular} {name!r} is registered by both {who}"


def validate_settings_model(model: Any, plugin: str) -> None:
    from pydantic import BaseModel

    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(f"plugin {plugin!r} registered settings {model!r}, not a pydantic model")


def _own_version() -> str:
    return __version__


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def _from_configuration() -> PluginManager:
    """A manager configured from the environment, or from the full settings where a
    config file or ``configure()`` may set the plugin switches."""

    configured = "mltrack.config.settings" in sys.modules and sys.modules["mltrack.config.settings"].has_overrides()
    if not (configured or any_config_file()):
        return PluginManager.from_environment()  # no file: the environment is the whole story
    from mltrack.config.settings import get_settings

    try:
        settings = get_settings()
    except ConfigError:
        # A bad config file must not stop `mltrack plugins` from working; the error
        # surfaces where settings are used.
        return PluginManager.from_environment()
    return PluginManager(
        disabled=set(settings.disable_plugins),
        allowed=set(settings.load_plugins) if settings.load_plugins is not None else None,
        strict=settings.strict_plugins,
        debug=settings.debug or _env_flag("MLTRACK_DEBUG"),
    )


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created (not loaded) on first call."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = _from_configuration()
        return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager so the next call rediscovers plugins (tests)."""
    global _manager
    with _manager_lock:
        _manager = None


def _renew_locks() -> None:
    global _manager_lock
    _manager_lock = threading.Lock()
    if _manager is not None:
        _manager._lock = threading.RLock()


def plugin_settings(plugin: str) -> Any:
    """The validated settings model instance of ``plugin``'s config section."""
    from pydantic import ValidationError

    from mltrack.config import settings as config

    manager = get_plugin_manager()
    registry = manager.registry("settings")
    if plugin not in registry:
        raise ConfigError(
            f"plugin {plugin!r} registers no settings", hint="check the plugin name with `mltrack plugins`"
        )
    model = registry[plugin].obj
    raw = config.get_settings().plugins.get(plugin, {})
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise config.config_error_from(
            exc, prefix=("plugins", plugin), plugin=plugin, overrides=config.current_overrides()
        ) from None


def extra_sinks() -> list[Sink]:
    """The sinks the plugins register (a name two plugins register is used by neither)."""
    manager = get_plugin_manager()
    contested = manager.collisions("sinks")
    for name, owners in contested.items():
        logger.error(
            "mltrack: sink %r is registered by both %s; neither is used (disable one with MLTRACK_DISABLE_PLUGINS)",
            name,
            " and ".join(repr(o) for o in owners),
        )
    return [c.obj for name, c in manager.registry("sinks").items() if name not in contested]


process_state.register("plugin manager", reset=reset_plugin_manager, after_fork=_renew_locks)
