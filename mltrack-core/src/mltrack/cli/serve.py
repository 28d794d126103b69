"""``mltrack serve``: the command. It imports only click; the server loads when it runs."""

from __future__ import annotations

import click

# pydantic and the server (uvicorn, fastapi) are imported when `mltrack serve` runs, not for `mltrack --help`
# (benchmarks/import_time.py).

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _byte_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--max-body-size``: bytes, or a number with a unit (100MiB, 5MB, 1GiB)."""
    if value is None:
        return None
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        size = int(TypeAdapter(ByteSize).validate_python(value.strip()))
    except ValidationError:
        raise click.BadParameter(f"{value!r} is not a size: give bytes or a number with a unit, e.g. 100MiB or 5MB")
    if size <= 0:
        raise click.BadParameter(f"{value!r} must be more than 0 bytes")
    return size


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
    "--max-body-size",
    callback=_byte_size,
    metavar="SIZE",
    help="Largest request body (bytes, or e.g. 100MiB, 5MB); larger ones get 413. "
    "[default: MLTRACK_SERVE_MAX_BODY_SIZE, else 100MiB]",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(1, 1_000_000),
    help="Most scoring requests a worker handles at once; more get 503 with Retry-After. "
    "[default: MLTRACK_SERVE_MAX_CONCURRENCY, else 128]",
)
@click.option(
    "--shutdown-timeout-s",
    type=click.IntRange(0, 3_600),
    help="After SIGTERM or Ctrl+C, seconds requests in flight may take to finish before they are cut off. "
    "[default: MLTRACK_SERVE_SHUTDOWN_TIMEOUT_S, else 15]",
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
    max_body_size: int | None,
    max_concurrency: int | None,
    shutdown_timeout_s: int | None,
    log_level: str,
) -> None:
    """Serve MODEL over HTTP with MLflow's scoring protocol, until Ctrl+C or SIGTERM.

    MODEL is a registered model name, a models:/ or runs:/ URI, or a local MLflow model
    directory. Routes: POST /invocations and /predict; GET /ping, /health, /metadata,
    /version. Concurrent requests to a batchable model (scikit-learn, PyTorch) are
    predicted in batches. Example: `mltrack serve churn --version @champion --port 5001`.
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
        max_body_size=max_body_size,
        max_concurrency=max_concurrency,
        shutdown_timeout_s=shutdown_timeout_s,
        log_level=log_level,
    )
