"""``mltrack deploy`` and ``mltrack deployments ...`` (imports only click until a command runs)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from mltrack.cli.output import echo_json
from mltrack.config.secrets import mask_secrets
from mltrack.errors import InvalidInputError, MLTrackError

# rich and the deployments (pydantic-settings, the plugin manager) are imported inside the commands, not for `mltrack
# --help` (benchmarks/import_time.py).


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_config(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("port=8011", "env.DEBUG=1")`` as ``{"port": 8011, "env": {"DEBUG": 1}}``: values are
    JSON when they parse as JSON, else strings; dotted keys build nested sections."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        parts = key.strip().split(".")
        target = config
        for part in parts[:-1]:
            section = target.setdefault(part, {})
            if not isinstance(section, dict):
                raise click.BadParameter(f"{key!r}: {part!r} is already set to a value", param_hint="--config")
            target = section
        # a nested section's leaf stays a string: env.DEBUG=1 means the text "1"
        target[parts[-1]] = value if len(parts) > 1 else _parse_value(value)
    return config


class RichProgress:
    """A provider's progress as a rich status line: the step, and how far it is."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._status: Any = None
        self._step = ""
        self._started = time.monotonic()

    def __enter__(self) -> RichProgress:
        self._status = self.console.status("starting")
        self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def step(self, message: str) -> None:
        if self._step:
            self.console.print(f"[green]✓[/] {self._step} [dim]({time.monotonic() - self._started:.1f} s)[/]")
        self._step = message
        self._started = time.monotonic()
        if self._status is not None:
            self._status.update(message)

    def advance(self, done: float, total: float | None = None) -> None:
        if self._status is not None:
            shown = f"{done:.0f}/{total:.0f}" if total else f"{done:.0f}"
            self._status.update(f"{self._step} [dim]{shown}[/]")

    def finish(self) -> None:
        self.step("")


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _version(value: str) -> int | str:
    # isascii: "²" is a digit to isdigit() but not to int(); it is an alias name here.
    return int(value) if value.isascii() and value.isdigit() else value


def _show(deployment: Any, as_json: bool) -> None:
    # Records should hold no secrets; a password in a provider's env, URL or message stays hidden.
    if as_json:
        echo_json(mask_secrets(deployment.as_dict()))
        return
    from rich.console import Console
    from rich.markup import escape

    style = {"ready": "green", "failed": "red", "pending": "yellow", "deleted": "dim"}[deployment.state.value]
    Console().print(
        f"[bold]{deployment.id}[/]  {deployment.model_name} v{deployment.model_version}"
        f"{f' (@{deployment.alias})' if deployment.alias else ''}  [{style}]{deployment.state}[/]"
        f"  {escape(mask_secrets(deployment.url or ''))}  {escape(mask_secrets(deployment.message))}"
    )


@click.command("deploy")
@click.argument("model")
@click.option("--version", "-v", default="latest", show_default=True, help="Version number, 'latest' or an alias.")
@click.option("--provider", "-p", default="local", show_default=True, help="Deploy provider (see `mltrack plugins`).")
@click.option("--config", "-c", "config_pairs", multiple=True, metavar="KEY=VALUE", help="Deployment setting.")
@click.option("--name", default=None, help="Deployment name (default: the model's name).")
@click.option("--plan", "plan_only", is_flag=True, help="Only show what would be created.")
@click.option("--no-wait", is_flag=True, help="Return once the provider accepted the deployment.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait for it to be ready.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def deploy_command(
    model: str,
    version: str,
    provider: str,
    config_pairs: tuple[str, ...],
    name: str | None,
    plan_only: bool,
    no_wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Deploy a registered MODEL version with a provider."""
    from mltrack.deployment.deployments import deploy, plan_deployment

    config = parse_config(config_pairs)
    if plan_only:
        plan = plan_deployment(model, _version(version), provider, config, name=name)
        if as_json:
            data = {
                "id": f"{plan.provider}/{plan.name}",
                "model": plan.model.uri,
                "config": plan.config.model_dump(mode="json"),
                "actions": plan.actions,
                "resources": plan.resources,
                "url": plan.url,
                "replaces": plan.replaces.id if plan.replaces else None,
            }
            echo_json(mask_secrets(data))
            return
        click.echo(f"Plan for {plan.provider}/{plan.name} ({plan.model.uri}):")
        for i, action in enumerate(plan.actions, 1):
            click.echo(f"  {i}. {mask_secrets(action)}")
        click.echo("Nothing was created (drop --plan to deploy).")
        return
    console = _console()
    with RichProgress(console) as progress:
        deployment = deploy(
            model, _version(version), provider, config, name=name, wait=not no_wait, timeout=timeout, progress=progress
        )
        progress.finish()
    _show(deployment, as_json)


@click.group("deployments")
def deployments_group() -> None:
    """List, inspect, query and delete deployments."""


@deployments_group.command("list")
@click.option("--provider", "-p", default=None, help="Only this provider's deployments.")
@click.option("--model", "-m", "model_name", default=None, help="Only deployments of this model.")
@click.option("--all", "include_history", is_flag=True, help="Include replaced deployments.")
@click.option("--cached", is_flag=True, help="Show recorded states without asking the providers.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def deployments_list(
    provider: str | None, model_name: str | None, include_history: bool, cached: bool, as_json: bool
) -> None:
    """List recorded deployments with their live status."""
    from mltrack.deployment.deployments import list_deployments, refresh

    records = list_deployments(provider, model_name, include_history=include_history)
    if not cached:
        records = [_refresh_quietly(refresh, r) for r in records]
    if as_json:
        echo_json([mask_secrets(r.as_dict()) for r in records])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("id", "model", "version", "state", "url", "updated", "message"):
        table.add_column(column, overflow="fold")
    for r in records:
        alias = f" @{r.alias}" if r.alias else ""
        version = f"{r.model_version}{alias}"
        table.add_row(
            r.id, r.model_name, version, str(r.state), mask_secrets(r.url or ""), r.updated_at, mask_secrets(r.message)
        )
    Console().print(table if records else "No deployments.")


def _refresh_quietly(refresh: Any, record: Any) -> Any:
    try:
        return refresh(record)
    except MLTrackError as exc:  # a provider that cannot be asked now: show the recorded state
        click.echo(f"warning: {record.id}: {mask_secrets(exc.message)}", err=True)
        return record


@deployments_group.command("status")
@click.argument("deployment_id")
@click.option("--wait", is_flag=True, help="Wait until it is no longer pending.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def deployments_status(deployment_id: str, wait: bool, timeout: float, as_json: bool) -> None:
    """Show a deployment's live status (exit code 1 unless it is ready)."""
    from mltrack.deployment.deployments import get_deployment, refresh, wait_until_final
    from mltrack.deployment.providers import DeploymentState

    deployment = refresh(get_deployment(deployment_id))
    if wait and not deployment.state.is_final:
        deployment = wait_until_final(deployment, timeout=timeout)
    _show(deployment, as_json)
    if deployment.state is not DeploymentState.READY:
        sys.exit(1)


@deployments_group.command("logs")
@click.argument("deployment_id")
@click.option("--tail", "-n", default=100, show_default=True, type=click.IntRange(min=1))
def deployments_logs(deployment_id: str, tail: int) -> None:
    """Print the last lines of a deployment's server log."""
    from mltrack.deployment.deployments import get_deployment

    for line in get_deployment(deployment_id).logs(tail):
        click.echo(line)


@deployments_group.command("predict")
@click.argument("deployment_id")
@click.option("--data", "-d", default=None, help="JSON input (a scoring payload, records or columns); default: stdin.")
@click.option("--file", "-f", "path", type=click.Path(exists=True, dir_okay=False), default=None, help="JSON file.")
def deployments_predict(deployment_id: str, data: str | None, path: str | None) -> None:
    """Send one request to a deployment and print its predictions as JSON."""
    from mltrack.deployment.deployments import get_deployment

    if data is not None and path is not None:
        raise click.UsageError("give --data or --file, not both")
    if data is not None:
        text = data
    elif path is not None:
        text = Path(path).read_text()
    else:
        text = sys.stdin.read()
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError("data", text[:80], f"is not JSON: {exc}") from None
    predictions = get_deployment(deployment_id).predict(payload)
    echo_json(predictions, indent=None)


@deployments_group.command("delete")
@click.argument("deployment_id", required=False)
@click.option("--all", "delete_all", is_flag=True, help="Delete every live deployment (of --provider, if given).")
@click.option("--provider", "-p", default=None, help="With --all: only this provider's deployments.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def deployments_delete(deployment_id: str | None, delete_all: bool, provider: str | None, as_json: bool) -> None:
    """Remove a deployment, or --all of them (deleting a deleted one succeeds)."""
    from mltrack.deployment.deployments import delete_deployment, list_deployments
    from mltrack.deployment.providers import DeploymentState

    if delete_all == (deployment_id is not None):
        raise click.UsageError("give one DEPLOYMENT_ID or --all")
    if deployment_id is not None:
        ids = [deployment_id]
    else:
        ids = [d.id for d in list_deployments(provider) if d.state is not DeploymentState.DELETED]
    deleted = []
    with RichProgress(_console()) as progress:
        for one in ids:
            deleted.append(delete_deployment(one, progress=progress))
        progress.finish()
    if as_json:
        echo_json([mask_secrets(d.as_dict()) for d in deleted])
        return
    if not deleted:
        click.echo("No live deployments.")
    for deployment in deleted:
        _show(deployment, False)
