"""Configuration: explicit argument > environment (``MLTRACK_*``, ``.env``) >
``mltrack.toml`` / ``[tool.mltrack]`` in pyproject.toml > defaults.

Plugin sections live under ``plugins.<id>`` (``[tool.mltrack.plugins.<id>]``) and are
validated by the model the plugin registers through ``register_settings``.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mltrack import process_state
from mltrack.config.files import (
    ENV_PREFIX,
    config_file,
    pyproject_file,
    tomllib,
)
from mltrack.config.secrets import MASK, is_secret_name
from mltrack.errors import ConfigError

# python-dotenv (about 60 ms, `python -X importtime`) is imported only when a .env file is read.


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MLTrackSettings(BaseSettings):
    """MLTrack's core settings (each field is also ``MLTRACK_<FIELD>``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
        pyproject_toml_table_header=("tool", "mltrack"),
    )

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; falls back to MLFLOW_TRACKING_URI, then a local sqlite store"
    )
    registry_uri: str | None = Field(None, description="MLflow model registry URI (default: the tracking URI)")
    experiment: str | None = Field(None, description="experiment name used when start_run names none")
    data_dir: Path = Field(
        Path.home() / ".mltrack", description="where MLTrack keeps local state (spools, deployments)"
    )
    debug: bool = Field(False, description="show tracebacks and plugin hook tracing")
    strict_plugins: bool = Field(False, description="re-raise plugin failures instead of isolating them")
    disable_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="plugins never loaded (comma-separated)"
    )
    load_plugins: Annotated[list[str] | None, NoDecode] = Field(
        None, description="if set, only these plugins are loaded (comma-separated; empty = none)"
    )
    flush_interval_ms: int = Field(100, ge=1, le=60_000, description="background writer flush interval")
    write_retries: int = Field(5, ge=0, le=50, description="retries of a failed store write")
    retry_backoff_s: float = Field(0.2, ge=0, le=60, description="first retry delay; doubles each retry")
    end_run_timeout_s: float = Field(60.0, gt=0, description="how long end_run waits for queued data")
    allow_nonfinite_metrics: bool = Field(False, description="store NaN/inf metric values instead of raising")
    spool: bool = Field(True, description="keep every accepted logging call in a crash-safe local spool")
    writer: Literal["thread", "process"] = Field(
        "process",
        description="where store writes run: a writer process that reads the spools (the training "
        "process only writes the spool), or a thread of the training process (spool = false, or a "
        "machine where no writer process can start, always uses the thread)",
    )
    mode: Literal["online", "offline"] = Field(
        "online",
        description="online: start_run creates the run in the tracking store; offline: runs are recorded "
        "only in the local spool, and `mltrack sync` creates them in the store later (needs spool = true)",
    )
    context_tags: bool = Field(True, description="tag runs with git, host and version information")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-plugin sections, validated by each plugin's model"
    )

    _split = field_validator("disable_plugins", "load_plugins", mode="before")(_split_list)

    @field_validator("tracking_uri", "registry_uri", "experiment")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank; unset it to use the default")
        return value

    @field_validator("mode")
    @classmethod
    def _offline_needs_spool(cls, value: str, info: ValidationInfo) -> str:
        # an offline run's spool is its only copy until `mltrack sync`
        if value == "offline" and info.data.get("spool") is False:
            raise ValueError("offline runs are recorded in the spool: set spool = true (MLTRACK_SPOOL=1)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml = config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        pyproject = pyproject_file()
        if pyproject is not None:
            sources.append(PyprojectTomlConfigSettingsSource(settings_cls, toml_file=pyproject))
        return tuple(sources)

    def resolved_tracking_uri(self) -> str:
        """The store URI in force: setting, else ``MLFLOW_TRACKING_URI``, else ``./mlflow.db``."""
        if self.tracking_uri:
            return self.tracking_uri
        from_mlflow = os.environ.get("MLFLOW_TRACKING_URI")
        if from_mlflow:
            return from_mlflow
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


SourceKind = Literal["argument", "environment", ".env", "mltrack.toml", "pyproject.toml", "default"]


def _read_toml(path: Path | None, table: tuple[str, ...] = ()) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    for part in table:
        data = data.get(part, {})
    return data


def _read_dotenv() -> dict[str, str]:
    path = Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v or "" for k, v in dotenv_values(path).items()}


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def describe_source(path: tuple[str, ...], overrides: dict[str, Any] | None = None) -> str:
    """Where the value at ``path`` (e.g. ``("flush_interval_ms",)``) comes from."""
    if overrides and _lookup(overrides, path):
        return "argument"
    env_name = ENV_PREFIX + "__".join(path).upper()
    if env_name in os.environ:
        return f"environment variable {env_name}"
    if env_name in _read_dotenv():
        return f".env file {Path('.env').resolve()}"
    toml = config_file()
    if _lookup(_read_toml(toml), path):
        return f"{toml}"
    pyproject = pyproject_file()
    if _lookup(_read_toml(pyproject, ("tool", "mltrack")), path):
        return f"{pyproject} [tool.mltrack]"
    # MLFLOW_TRACKING_URI is only a fallback: every MLTrack source above beats it.
    if path == ("tracking_uri",) and "MLFLOW_TRACKING_URI" in os.environ:
        return "environment variable MLFLOW_TRACKING_URI"
    return "default"


def describe_table_source(path: tuple[str, ...], overrides: dict[str, Any] | None = None) -> str:
    """Where the values of the table at ``path`` (e.g. ``("plugins",)``) come from.

    A table gathers keys from several sources (``MLTRACK_PLUGINS__SYSTEM__ENABLED`` in the
    environment, ``[plugins.fixture]`` in mltrack.toml): each one is named, highest precedence
    first, joined by "; "; "default" when none sets anything.
    """
    found = []
    if overrides and _lookup(overrides, path):
        found.append("argument")
    prefix = ENV_PREFIX + "__".join(path).upper()
    for names, label in ((os.environ, "environment variable"), (_read_dotenv(), f".env file {Path('.env').resolve()}")):
        under = sorted(n for n in names if n.upper() == prefix or n.upper().startswith(prefix + "__"))
        if under and label == "environment variable":
            found += [f"{label} {n}" for n in under]
        elif under:
            found.append(f"{label} ({', '.join(under)})")
    toml = config_file()
    if _lookup(_read_toml(toml), path):
        found.append(f"{toml}")
    pyproject = pyproject_file()
    if _lookup(_read_toml(pyproject, ("tool", "mltrack")), path):
        found.append(f"{pyproject} [tool.mltrack]")
    return "; ".join(found) or "default"


def _fix_hint(source: str) -> str:
    if source.startswith("environment variable"):
        return f"fix or unset the {source}"
    if source == "argument":
        return "fix the argument"
    if source == "default":
        return "set a valid value"
    return f"fix the value in {source}"


def config_error_from(
    exc: ValidationError,
    *,
    prefix: tuple[str, ...] = (),
    plugin: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> ConfigError:
    """One readable ``ConfigError`` naming plugin, field, value and source of each problem."""
    problems: list[str] = []
    first_source = "default"
    for i, error in enumerate(exc.errors()):
        loc = tuple(str(part) for part in error["loc"])
        field = ".".join(loc) or "(section)"
        source = describe_source(prefix + loc[:1], overrides)
        if i == 0:
            first_source = source
        value = error.get("input")
        if loc and is_secret_name(loc[-1]) and value is not None:
            value = MASK  # a refused secret is still a secret: name the field, never echo it
        owner = f"plugin {plugin!r} setting" if plugin else "setting"
        problems.append(f"{owner} {field!r} = {value!r} (from {source}): {error['msg']}")
    return ConfigError("; ".join(problems), hint=_fix_hint(first_source))


PLUGIN_LOADING_SETTINGS = {"disable_plugins", "load_plugins", "strict_plugins", "debug"}

_settings: MLTrackSettings | None = None
_overrides: dict[str, Any] = {}
_lock = threading.Lock()


def _build(overrides: dict[str, Any]) -> MLTrackSettings:
    with warnings.catch_warnings():
        # pydantic-settings warns that the pyproject table header is unused whenever
        # no pyproject.toml with [tool.mltrack] is found; that is expected here.
        warnings.filterwarnings("ignore", message=".*pyproject_toml_table_header.*")
        return MLTrackSettings(**overrides)


def get_settings() -> MLTrackSettings:
    """The settings in force, resolved once per process (``configure`` resets them)."""
    global _settings
    with _lock:
        if _settings is None:
            try:
                _settings = _build(_overrides)
            except ValidationError as exc:
                raise config_error_from(exc, overrides=_overrides) from None
        return _settings


def configure(**overrides: Any) -> MLTrackSettings:
    """Set settings explicitly (highest precedence) and return the result.

    Example: ``mltrack.configure(tracking_uri="http://127.0.0.1:5000")``.
    """
    global _settings, _overrides
    unknown = set(overrides) - set(MLTrackSettings.model_fields)
    if unknown:
        known = ", ".join(sorted(MLTrackSettings.model_fields))
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}", hint=f"known settings: {known}")
    with _lock:
        candidate = {**_overrides, **overrides}
        try:
            settings = _build(candidate)
        except ValidationError as exc:
            raise config_error_from(exc, overrides=candidate) from None
        _overrides, _settings = candidate, settings
    if overrides.keys() & PLUGIN_LOADING_SETTINGS:
        # the plugin manager sits above the settings: it is reached through the process state
        # it registered (none yet means nothing to rediscover)
        process_state.reset_part("plugin manager")
    return settings


def has_overrides() -> bool:
    return bool(_overrides)


def current_overrides() -> dict[str, Any]:
    """The settings given to ``configure()`` so far (error messages name where a value came from)."""
    return dict(_overrides)


def reset_settings() -> None:
    """Drop explicit overrides and re-read configuration on next use (tests)."""
    global _settings, _overrides
    with _lock:
        _settings, _overrides = None, {}


def _renew_lock() -> None:
    global _lock
    _lock = threading.Lock()


process_state.register("settings", reset=reset_settings, after_fork=_renew_lock)
