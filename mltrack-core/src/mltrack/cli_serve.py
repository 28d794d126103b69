"""``mltrack serve``: the command. It imports only click; the server loads when it runs."""

from __future__ import annotations

import click

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command("serve")
@click.argument("model")
@click.option(
    "--version",
    "model_version",
    default="latest",
    show_default=True,
    help="Version of a registered model: a number, 'latest', or an alias ('@champion').",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Server processes.")
@click.option(
    "--max-batch-size",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most rows predicted in one call when concurrent requests are batched.",
)
@click.option(
    "--max-wait-ms",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 60_000),
    help="Longest a request waits for others to share its batch.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS),
    help="Server log level; 'debug' also logs every request.",
)
def serve_command(
    model: str,
    model_version: str,
    host: str,
    port: int,
    workers: int,
    max_batch_size: int,
    max_wait_ms: float,
    log_level: str,
) -> None:
    """Serve MODEL over HTTP with MLflow's scoring protocol, until Ctrl+C or SIGTERM.

    MODEL is a registered model name, a models:/ or runs:/ URI, or a local MLflow model
    directory. Routes: POST /invocations and /predict; GET /ping, /health, /metadata.
    Concurrent requests to a batchable model (scikit-learn, PyTorch) are predicted in
    batches. Example: `mltrack serve churn --version @champion --port 5001`.
    """
    from mltrack.serving.server import serve

    serve(
        model,
        version=model_version,
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        log_level=log_level,
    )
