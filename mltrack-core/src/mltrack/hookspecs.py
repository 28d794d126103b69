"""The hook specifications: MLTrack's public extension contract.

Registration hooks receive a ``register`` callback. Calling it records the object
together with the plugin that registered it (its provenance), so the core can list
what each plugin contributes and name both plugins when two claim the same name.
Implementations may accept any subset of a hook's arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from mltrack.tracking.runs import ActiveRun

PROJECT_NAME = "mltrack"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_settings(register: Callable[[type[Any]], None]) -> None:
    """Register the pydantic model that validates this plugin's configuration section.

    Called once, when configuration is first resolved. ``register(Model)`` binds
    ``[tool.mltrack.plugins.<plugin-id>]`` (and ``MLTRACK_PLUGINS__<ID>__<FIELD>``) to
    ``Model``; a bad value fails naming the plugin, field, value and source. Returns nothing.
    """


@hookspec
def register_flavours(register: Callable[[Any], None]) -> None:
    """Register ``Flavour`` objects (save / load / predict adapter / requirements).

    Called once, the first time a model is logged or loaded. ``register(flavour)``
    keys the flavour by ``flavour.name``. Returns nothing.
    """


@hookspec(firstresult=True)
def infer_flavour(model: Any) -> str | None:
    """Name the flavour that should handle ``model``, or return None to pass.

    Called by ``log_model`` when no flavour was given. The first non-None answer
    wins; the core's generic ``python`` flavour answers last.
    """


@hookspec
def register_autologgers(register: Callable[[Any], None]) -> None:
    """Register framework autologgers, switched on by ``mltrack.autolog()``.

    Called once, the first time autologging is requested. Returns nothing.
    """


@hookspec
def register_deploy_providers(register: Callable[[Any], None]) -> None:
    """Register ``DeployProvider`` classes keyed by their ``name``.

    Called once, the first time a deployment provider is looked up. Returns nothing.
    """


@hookspec
def register_sinks(register: Callable[[Any], None]) -> None:
    """Register extra logging sinks (``mltrack.Sink`` instances).

    Called once, when the background writer starts. Sinks receive the same batches
    that are written to the MLflow store; a failing sink is isolated and marked
    degraded, never failing the run. Returns nothing.
    """


@hookspec
def run_context_tags(run: ActiveRun) -> dict[str, str] | None:
    """Return tags to set on ``run`` when it starts (git commit, host, versions...).

    Called once per run, before ``on_run_start``. Later plugins override earlier
    ones key by key; tags passed to ``start_run`` override all of them.
    """


@hookspec
def on_run_start(run: ActiveRun) -> None:
    """Observe a run that has just started. Called after its context tags are set."""


@hookspec
def on_run_end(run: ActiveRun, status: str, error: BaseException | None) -> None:
    """Observe a run that is ending with ``status`` (FINISHED/FAILED/KILLED).

    ``error`` is the exception that ended it, if any. Called before the run's queued
    data is flushed, while the run still accepts data (an observer may log final
    values); ``run.status`` is still RUNNING during the call.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``mltrack`` CLI with ``cli.add_command(...)``.

    Called once, when the CLI starts. Returns nothing.
    """
