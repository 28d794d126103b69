"""The ``mltrack`` command line (click; rich for output, imported when printing)."""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from mltrack._version import __version__
from mltrack.cli.artifacts import artifacts_group
from mltrack.cli.deploy import deploy_command, deployments_group
from mltrack.cli.output import _console, _table, echo_json
from mltrack.cli.serve import serve_command
from mltrack.config.files import config_file, pyproject_file
from mltrack.config.secrets import mask_secrets
from mltrack.errors import MLTrackError
from mltrack.plugins.install_hint import install_hint

# rich, the settings (pydantic), the plugin manager and the run, store and spool modules (`# lazy:`) are imported
# inside the commands, not for `mltrack --help` (benchmarks/import_time.py).

CORE_COMMANDS = (
    "plugins",
    "config",
    "experiments",
    "runs",
    "artifacts",
    "models",
    "sync",
    "gc",
    "deploy",
    "deployments",
    "serve",
)


def _debug() -> bool:
    return os.environ.get("MLTRACK_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


_echo_json = echo_json  # the name sync_command prints with


# Commands that plugins of this repository add, and the extra that installs each.
PLUGIN_COMMANDS = {"ui": "ui", "sagemaker": "sagemaker"}


class _Commands(click.Group):
    """Says which plugin to install for a known plugin's command that is missing."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name in PLUGIN_COMMANDS and self.get_command(ctx, name) is None:
            extra = PLUGIN_COMMANDS[name]
            raise click.UsageError(
                f"No such command '{name}': it comes with the mltrack-{extra} plugin, which is not installed "
                f"(or failed to load: see `mltrack plugins`). Install it: {install_hint(extra)}",
                ctx,
            )
        return super().resolve_command(ctx, args)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="mltrack", message="%(prog)s %(version)s")
def cli() -> None:
    """MLTrack: experiment tracking on MLflow, extensible with plugins."""


@cli.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, their status and what they contribute (plugins new: start one)."""
    if ctx.invoked_subcommand is not None:
        return
    from mltrack.plugins.manager import get_plugin_manager

    infos = get_plugin_manager().plugin_infos()
    if as_json:
        echo_json([info.as_dict() for info in infos])
        return
    table = _table("name", "distribution", "version", "status", "contributes / reason")
    for info in infos:
        detail = info.reason or "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(info.contributes.items()) if v)
        style = {"failed": "red", "disabled": "yellow"}.get(info.status, "")
        table.add_row(
            info.name,
            info.distribution or "",
            info.version or "",
            f"[{style}]{info.status}[/]" if style else info.status,
            detail,
        )
    _console().print(table)


@plugins_command.command("new")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["provider", "flavour", "sink", "ui"]),
    required=True,
    help="What the plugin adds: a deploy provider, a model flavour, a logging sink or a UI panel.",
)
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Where to write it (default ./mltrack-NAME).")
def plugins_new(name: str, kind: str, directory: Path | None) -> None:
    """Write a new plugin package NAME (pyproject, plugin module, conformance tests, README)."""
    from mltrack.cli.scaffold import new_plugin  # lazy: not on --help

    target = new_plugin(name, kind, directory)
    click.echo(f"created {target}")
    click.echo(f"next: pip install -e {target} && pytest {target / 'tests'}")


@cli.group("config")
def config_group() -> None:
    """Inspect configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def config_show(as_json: bool) -> None:
    """Show every setting in force and where its value comes from."""
    from mltrack.config.settings import describe_source, describe_table_source, get_settings

    settings = get_settings()
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        # a table (the plugin sections) gathers keys from several sources: name them all
        source = describe_table_source((name,)) if isinstance(value, dict) else describe_source((name,))
        if name == "tracking_uri" and value is None:
            value = settings.resolved_tracking_uri()
            source = describe_source((name,)) if "MLFLOW_TRACKING_URI" in os.environ else "default"
        rows.append({"setting": name, "value": mask_secrets(value, name), "source": source})
    if as_json:
        echo_json({"settings": rows, "config_file": str(config_file() or ""), "pyproject": str(pyproject_file() or "")})
        return
    table = _table("setting", "value", "source")
    for row in rows:
        table.add_row(row["setting"], str(row["value"]), row["source"])
    _console().print(table)


@cli.group("experiments")
def experiments_group() -> None:
    """Work with experiments."""


@experiments_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def experiments_list(as_json: bool) -> None:
    """List the store's experiments."""
    from mltrack.tracking.experiments import list_experiments  # lazy: not on --help

    experiments = list_experiments()
    rows = [
        {
            "id": e.experiment_id,
            "name": e.name,
            "artifact_location": mask_secrets(e.artifact_location),
            "lifecycle_stage": e.lifecycle_stage,
        }
        for e in experiments
    ]
    if as_json:
        echo_json(rows)
        return
    table = _table("id", "name", "artifact location")
    for row in rows:
        table.add_row(row["id"], row["name"], row["artifact_location"])
    _console().print(table)


@cli.group("runs")
def runs_group() -> None:
    """Work with runs (a run id may be shortened to any unique prefix of 4 or more characters)."""


def _run_row(run: Any, experiment_name: str | None = None) -> dict[str, Any]:
    start = run.info.start_time
    end = run.info.end_time
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "experiment": experiment_name,
        "status": run.info.status,
        "lifecycle_stage": run.info.lifecycle_stage,
        "start": datetime.fromtimestamp(start / 1000, timezone.utc).isoformat(timespec="seconds") if start else None,
        "duration_s": round((end - start) / 1000, 3) if start and end else None,
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
    }


_STATUS_STYLE = {"FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan", "FINISHED": "green"}


def _number(value: float) -> str:
    """A metric to 4 significant digits (the exact value is in ``--json``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _started(start_ms: int | None) -> str:
    """A start time in the terminal's local time, short: the year only when it is not this one."""

    if not start_ms:
        return ""
    started = datetime.fromtimestamp(start_ms / 1000)
    return started.strftime("%m-%d %H:%M" if started.year == datetime.now().year else "%Y-%m-%d")


def _metric_lines(metrics: list[tuple[str, float]], width: int) -> str:
    """``key=value`` pairs packed into lines of ``width``; a value is never split, a long key is shortened."""
    lines: list[str] = []
    for key, value in metrics:
        number = _number(value)
        if len(key) + 1 + len(number) > width:
            key = key[: max(1, width - len(number) - 2)] + "\u2026"
        pair = f"{key}={number}"
        if lines and len(lines[-1]) + 1 + len(pair) <= width:
            lines[-1] += " " + pair
        else:
            lines.append(pair)
    return "\n".join(lines)


def _key_metrics(rows: list[dict[str, Any]], count: int) -> list[str]:
    """The metrics most of the listed runs have, the model's before ``system/`` ones (ties by name)."""

    seen = Counter(key for row in rows for key in row["metrics"])
    ranked = sorted(seen.items(), key=lambda item: (item[0].startswith("system/"), -item[1], item[0]))
    return [key for key, _ in ranked[:count]]


@runs_group.command("list")
@click.option("--experiment", "-e", multiple=True, help="Experiment name or id (repeatable; default: all).")
@click.option("--filter", "filter_string", default="", help='MLflow filter, e.g. "metrics.loss < 0.1".')
@click.option("--order-by", multiple=True, help='e.g. "metrics.loss ASC" (repeatable).')
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--metric", "-m", "metrics", multiple=True, help="Metric to show (repeatable; default: the most common ones)."
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (full run ids).")
def runs_list(
    experiment: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    limit: int,
    metrics: tuple[str, ...],
    as_json: bool,
) -> None:
    """List runs, newest first: short ids, names, experiments and their latest metric values."""
    from mltrack.storage.store import get_store  # lazy: not on --help
    from mltrack.tracking.queries import search_runs  # lazy: not on --help
    from mltrack.tracking.run_ids import short_run_id  # lazy: not on --help
    from mltrack.tracking.run_lifecycle import experiment_names

    found = search_runs(list(experiment) or None, filter_string, order_by=list(order_by) or None, max_results=limit)
    names = experiment_names(get_store(), {r.info.experiment_id for r in found})
    rows = [_run_row(r, names[r.info.experiment_id]) for r in found]
    if as_json:
        echo_json(rows)
        return
    console = _console()
    wide = console.width >= 120
    shown = list(metrics) or _key_metrics(rows, 5 if wide else 3)
    from rich.table import Table

    # Ids and times never wrap (a folded id cannot be copied); names are cut short with an ellipsis
    # to leave the metrics (which wrap between values) about half of the rest. Runs of one
    # experiment leave its column out: its name is said once, above the table.
    experiments = {row["experiment"] or row["experiment_id"] for row in rows}
    one_experiment = len(experiments) == 1
    columns = 5 + wide + (not one_experiment)
    room = max(0, console.width - (8 + 8 + 11 + 9 * wide) - 2 * (columns - 1))
    name_need = min(32, max([4, *(len(row["name"] or "") for row in rows)]))
    experiment_need = 0 if one_experiment else min(24, max(10, *(len(e) for e in experiments)))
    left = room - (22 if shown else 0)
    if name_need + experiment_need <= left:
        name_w, experiment_w = name_need, experiment_need
    else:
        experiment_w = 0 if one_experiment else max(6, min(experiment_need, left * 2 // 5))
        name_w = max(8, min(name_need, left - experiment_w))
    metrics_w = max(0, room - name_w - experiment_w) if shown else 0
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("run", no_wrap=True, min_width=8)
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=name_w)
    if not one_experiment:
        table.add_column("experiment", no_wrap=True, overflow="ellipsis", max_width=experiment_w)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    if wide:
        table.add_column("duration", no_wrap=True, justify="right")
    table.add_column("metrics", no_wrap=True, max_width=max(metrics_w, 1))
    for row, run in zip(rows, found, strict=True):
        values = _metric_lines([(key, row["metrics"][key]) for key in shown if key in row["metrics"]], metrics_w)
        status = row["status"]
        cells = [short_run_id(row["run_id"]), row["name"] or ""]
        if not one_experiment:
            cells.append(row["experiment"] or row["experiment_id"])
        cells += [
            f"[{_STATUS_STYLE[status]}]{status}[/]" if status in _STATUS_STYLE else status,
            _started(run.info.start_time),
        ]
        if wide:
            cells.append("" if row["duration_s"] is None else f"{row['duration_s']:.0f}s")
        table.add_row(*cells, values)
    if one_experiment:
        console.print(f"experiment [bold]{experiments.pop()}[/]", highlight=False)
    console.print(table, highlight=False)
    if not rows:
        console.print("no runs", highlight=False)


@runs_group.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show a run's info, params, metrics and tags (RUN_ID may be a unique prefix)."""
    from mltrack.storage.store import get_store  # lazy: not on --help
    from mltrack.tracking.run_ids import resolve_run_id  # lazy: not on --help
    from mltrack.tracking.run_lifecycle import experiment_names
    from mltrack.tracking.runs import get_run

    run = get_run(resolve_run_id(run_id))
    experiment = experiment_names(get_store(), {run.info.experiment_id})[run.info.experiment_id]
    row = _run_row(run, experiment)
    row["tags"] = dict(run.data.tags)
    if as_json:
        echo_json(row)
        return
    console = _console()
    deleted = "  [red]deleted[/]" if row["lifecycle_stage"] == "deleted" else ""
    console.print(
        f"[bold]{row['name']}[/] {row['run_id']}  {row['status']}  experiment {experiment}{deleted}", highlight=False
    )
    for section in ("params", "metrics", "tags"):
        table = _table(section, "value")
        for key, value in sorted(row[section].items()):
            table.add_row(key, str(value))
        console.print(table)


def _change_line(verb: str, change: Any) -> str:
    from mltrack.tracking.run_ids import short_run_id  # lazy: not on --help

    what = f"run {short_run_id(change.run_id)} ({change.name or 'unnamed'}) in experiment {change.experiment!r}"
    text = f"{verb} {what}" if change.changed else f"{what}: {change.note}"
    return f"{text} ({change.note})" if change.changed and change.note else text


@runs_group.command("delete")
@click.argument("runs", nargs=-1, required=True)
def runs_delete(runs: tuple[str, ...]) -> None:
    """Delete RUNS (ids or unique prefixes): hidden until `mltrack runs restore`, removed for good by `mltrack gc`."""
    from mltrack.tracking.run_lifecycle import delete_run

    for run in runs:
        click.echo(_change_line("deleted", delete_run(run)))


@runs_group.command("restore")
@click.argument("runs", nargs=-1, required=True)
def runs_restore(runs: tuple[str, ...]) -> None:
    """Restore deleted RUNS (ids or unique prefixes)."""
    from mltrack.tracking.run_lifecycle import restore_run

    for run in runs:
        click.echo(_change_line("restored", restore_run(run)))


@cli.command("gc")
@click.option("--older-than", default=None, help="Only runs deleted longer ago than this: 30d, 12h, 1d12h, 90m.")
@click.option(
    "--run-ids",
    "run_ids",
    multiple=True,
    help="Only these deleted runs (ids or prefixes, comma-separated, repeatable).",
)
@click.option(
    "--backend-store-uri",
    default=None,
    metavar="URI",
    help="The tracking server's database (its --backend-store-uri); default: the tracking URI, when it is one.",
)
@click.option("--dry-run", is_flag=True, help="Only list the runs that would be removed.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def gc_command(
    older_than: str | None, run_ids: tuple[str, ...], backend_store_uri: str | None, dry_run: bool, yes: bool
) -> None:
    """Remove deleted runs for good: their artifacts, params, metrics and tags (as `mlflow gc`)."""
    from mltrack.tracking.run_ids import short_run_id  # lazy: not on --help
    from mltrack.tracking.run_lifecycle import Collector, parse_age

    age_ms = parse_age(older_than) if older_than is not None else 0
    wanted = [part.strip() for value in run_ids for part in value.split(",") if part.strip()] or None
    collector = Collector(backend_store_uri)
    runs = collector.deleted(older_than_ms=age_ms, runs=wanted)
    if not runs:
        click.echo("no deleted runs to remove" + (f" (deleted more than {older_than} ago)" if older_than else ""))
        return
    for run in runs:
        click.echo(
            f"  {short_run_id(run.info.run_id)}  {run.info.run_name or 'unnamed'}  ({collector.experiment_of(run)})"
        )
    if dry_run:
        click.echo(f"{len(runs)} deleted run(s) would be removed for good (dry run)")
        return
    if not yes:
        click.confirm(f"Remove these {len(runs)} run(s) and their artifacts for good?", abort=True)
    kept = 0
    for run in runs:
        change = collector.remove(run)
        kept += not change.changed
        click.echo(_change_line("removed", change))
    if kept:
        raise MLTrackError(
            f"{kept} run(s) were kept because their artifacts could not be removed",
            hint="fix access to the artifact store and run `mltrack gc` again",
        )


@cli.group("models")
def models_group() -> None:
    """Work with the model registry."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models_list(as_json: bool) -> None:
    """List registered models with their latest version and aliases."""
    from mltrack.models.registry import list_models, list_versions

    rows: list[dict[str, Any]] = []
    for model in list_models():
        versions = list_versions(model.name)
        rows.append(
            {
                "name": model.name,
                "latest_version": int(versions[-1].version) if versions else None,
                "versions": len(versions),
                "aliases": {alias: int(v) for alias, v in (model.aliases or {}).items()},
                "description": model.description,
            }
        )
    if as_json:
        echo_json(rows)
        return
    table = _table("name", "latest", "versions", "aliases")
    for row in rows:
        aliases = ", ".join(f"@{a} -> v{v}" for a, v in sorted(row["aliases"].items()))
        table.add_row(row["name"], str(row["latest_version"] or ""), str(row["versions"]), aliases)
    _console().print(table)


@models_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models_show(name: str, as_json: bool) -> None:
    """Show a registered model's versions, the run each came from, tags and aliases."""
    from mltrack.models.registry import _registered, list_versions

    model = _registered(name)
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows: list[dict[str, Any]] = [
        {
            "version": int(v.version),
            "run_id": v.run_id,
            "status": v.status,
            "source": mask_secrets(v.source),
            "aliases": sorted(aliases.get(str(v.version), [])),
            "tags": dict(v.tags or {}),
            "created": v.creation_timestamp,
        }
        for v in list_versions(name)
    ]
    if as_json:
        echo_json({"name": model.name, "description": model.description, "versions": rows})
        return
    table = _table("version", "aliases", "run id", "status", "tags")
    for row in rows:
        table.add_row(
            str(row["version"]),
            ", ".join(f"@{a}" for a in row["aliases"]),
            row["run_id"] or "",
            row["status"],
            ", ".join(f"{k}={v}" for k, v in sorted(row["tags"].items())),
        )
    _console().print(f"[bold]{model.name}[/]")
    _console().print(table)


@models_group.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int)
def models_alias(name: str, alias: str, version: int) -> None:
    """Point ALIAS of model NAME at VERSION (e.g. `mltrack models alias churn champion 3`)."""
    from mltrack.models.registry import set_alias

    set_alias(name, alias, version)
    click.echo(f"{name}@{alias.lstrip('@')} -> version {version}")


def _spools_left_alone(root: Path, replayed: set[Path]) -> str:
    """Why the spools sync did not touch are still there, in a few words ('' if none are)."""
    from mltrack.storage.spool import WRITER_LOCK, spool_folders, spool_owner_alive  # lazy: not on --help

    live = delivering = 0
    for folder in spool_folders(root):
        if folder in replayed or not folder.exists():
            continue
        if spool_owner_alive(folder):
            live += 1
        elif (folder / WRITER_LOCK).exists():
            delivering += 1
    parts = []
    if live:
        parts.append(f"{live} spool(s) of running processes")
    if delivering:
        parts.append(
            f"{delivering} spool(s) still being delivered (by a writer process or another sync): "
            "run `mltrack sync` again shortly"
        )
    return "; ".join(parts)


@cli.command("sync")
@click.option("--dry-run", is_flag=True, help="Only list what would be sent.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def sync_command(dry_run: bool, as_json: bool) -> None:
    """Send what crashed or disconnected processes, and offline runs, left in their spools.

    Each orphaned spool is sent to the store it was written for (exactly once: the
    store ignores points it already has), its run gets its final status (KILLED, with
    a tag saying how and when, if the process died without ending it), and the spool
    is removed. An offline run is first created in the store, with its original start
    time; the new run id is printed.
    """
    from mltrack.config.settings import get_settings
    from mltrack.storage.spool import read_spool, spool_folders, spool_root, try_lock  # lazy: not on --help
    from mltrack.tracking.replay import replay_orphans  # lazy: not on --help

    root = spool_root(get_settings().data_dir)
    if dry_run:
        rows = []
        for folder in spool_folders(root):
            fd = try_lock(folder)
            if fd is None:
                continue
            contents = read_spool(folder)
            os.close(fd)
            rows.append(
                {
                    "run_id": contents.header.get("run_id"),
                    "offline": "offline" in contents.header,
                    "store": contents.header.get("tracking_uri"),
                    "metrics": len(contents.metrics),
                    "params": len(contents.params),
                    "tags": len(contents.tags),
                    "problems": contents.problems,
                    "path": str(folder),
                }
            )
        if as_json:
            _echo_json(rows)
        else:
            click.echo(f"{len(rows)} orphaned spool(s) under {root}")
            for row in rows:
                click.echo(
                    f"  {'offline ' if row['offline'] else ''}run {row['run_id']}: {row['metrics']} metric point(s), "
                    f"{row['params']} param(s), {row['tags']} tag(s) -> {row['store']}"
                )
        return
    console = _console()
    from rich.console import Console

    with Console(stderr=True).status(f"replaying spools under {root} ..."):
        # an explicit sync may wait for a writer process to let go of a dead process's spool
        reports = replay_orphans(root, detected_by="mltrack sync", writer_wait_s=30.0)
    rows = [
        {
            "run_id": r.run_id,
            "store": r.tracking_uri,
            "metrics": r.metrics,
            "params": r.params,
            "tags": r.tags,
            "status_set": r.status_set,
            "offline_run_id": r.offline_run_id,
            "created": r.created,
            "experiment_id": r.experiment_id,
            "artifacts": r.artifacts,
            "refused": r.refused,
            "quarantined": r.quarantined,
            "problems": r.problems,
            "error": r.error,
            "path": str(r.path),
        }
        for r in reports
    ]
    if as_json:
        _echo_json(rows)
    else:
        left = _spools_left_alone(root, {r.path for r in reports})
        if not rows:
            console.print(f"nothing to sync under {root}" + (f" ({left})" if left else ""))
        elif left:
            console.print(f"left alone: {left}")
        table = _table("run id", "store", "metrics", "params", "tags", "refused", "status set", "problems")
        for report in reports:
            notes = "; ".join(report.problems + ([f"[red]{report.error}[/]"] if report.error else []))
            if report.quarantined:
                notes = f"[yellow]damaged: moved to {report.quarantined}[/]; " + notes
            table.add_row(
                report.run_id,
                report.tracking_uri or "",
                str(report.metrics),
                str(report.params),
                str(report.tags),
                str(report.refused),
                report.status_set or "",
                notes,
            )
        if rows:
            console.print(table)
        for report in reports:
            if report.offline_run_id and report.ok and not report.quarantined:
                verb = "created" if report.created else "found"
                console.print(
                    f"offline run {report.offline_run_id} -> {verb} run {report.run_id} "
                    f"(experiment {report.experiment_id}, {report.artifacts} artifact file(s))",
                    highlight=False,
                )
    # Refused records and damaged spools are settled (kept in the quarantine, reported above):
    # only a spool that could not be sent at all, and is kept for another try, is a failure.
    failed = [r for r in reports if not r.ok]
    if failed:
        raise MLTrackError(
            f"{len(failed)} spool(s) could not be sent: {failed[0].error}",
            hint="they are kept; run `mltrack sync` again once the store is reachable",
        )


def _add_deploy_commands() -> None:
    cli.add_command(deploy_command)
    cli.add_command(deployments_group)


_add_deploy_commands()


def _add_artifacts_commands() -> None:
    cli.add_command(artifacts_group)


_add_artifacts_commands()


def _add_serve_command() -> None:
    cli.add_command(serve_command)


_add_serve_command()


def build_cli() -> click.Group:
    """The CLI with every plugin's commands added (a broken plugin is skipped)."""
    from mltrack.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    for plugin, commands in manager.plugin_commands().items():
        for name, command in commands.items():
            if name in cli.commands:
                logging.getLogger("mltrack.cli").warning(
                    "plugin %r adds command %r, which already exists; ignored", plugin, name
                )
                continue
            cli.add_command(command, name)
    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into one line plus a hint."""
    # MLflow prints "View run ... at" to stdout when a run ends on a server; the CLI's
    # stdout is for its own (often JSON) output.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    logging.basicConfig(
        level=logging.DEBUG if _debug() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        group = build_cli()
        # Standalone mode: click handles its own errors and exits with the command's
        # exit code (ctx.exit(n) is lost in non-standalone mode); ours propagate to here.
        group.main(args=argv, prog_name="mltrack", standalone_mode=True)
    except MLTrackError as exc:
        _fail(f"Error: {exc.message}", exc.hint)
    except Exception as exc:
        _fail(
            f"Error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "set MLTRACK_DEBUG=1 to see the traceback",
        )


def _fail(message: str, hint: str | None) -> None:
    if _debug():
        traceback.print_exc()
    # A store's or provider's error often quotes the URI it failed on, password included.
    click.echo(mask_secrets(message), err=True)
    if hint:
        click.echo(f"Hint: {mask_secrets(hint)}", err=True)
    sys.exit(1)
