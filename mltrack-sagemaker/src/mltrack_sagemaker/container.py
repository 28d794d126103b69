"""The serving container's entrypoint: SageMaker runs ``docker run <image> serve``.

The image's exec-form ``ENTRYPOINT ["python", "-m", "mltrack_sagemaker.container"]`` receives
``serve`` as its argument and runs MLTrack's serving app (``GET /ping``, ``POST /invocations``)
on 0.0.0.0:8080 for the model SageMaker unpacked into ``/opt/ml/model``. The same command runs
as a plain local process against an unpacked ``model.tar.gz``:

    python -m mltrack_sagemaker.container serve --model-dir ./model --host 127.0.0.1 --port 8011

Settings come from options, else environment variables (SageMaker's ``SAGEMAKER_BIND_TO_PORT``
for the port when it gives one, else ``MLTRACK_SERVE_PORT``), else the SageMaker defaults.

Python as PID 1 ignores SIGTERM unless it installs a handler, and SageMaker sends SIGTERM
(then SIGKILL after 30 s) to stop a container: a handler is installed first thing, so a
container still loading its model stops at once; once the server runs, uvicorn's own handler
takes over and drains in-flight requests before exiting.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

MODEL_DIR = "/opt/ml/model"
PORT = 8080


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                raise SystemExit(f"error: {name}={value!r} is not an integer") from None
    return default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mltrack-sagemaker-container", description="MLTrack's SageMaker serving container"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve /opt/ml/model on port 8080 (what SageMaker runs)")
    serve.add_argument(
        "--model-dir", default=os.environ.get("MLTRACK_MODEL_DIR", MODEL_DIR), help="the unpacked model.tar.gz"
    )
    serve.add_argument("--host", default=os.environ.get("MLTRACK_SERVE_HOST", "0.0.0.0"), help="address to bind")
    serve.add_argument(
        "--port", type=int, default=_env_int("SAGEMAKER_BIND_TO_PORT", "MLTRACK_SERVE_PORT", default=PORT)
    )
    serve.add_argument(
        "--workers", type=int, default=_env_int("MLTRACK_SERVE_WORKERS", default=1), help="server processes"
    )
    commands.add_parser("train", help="not supported: this image only serves")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    args = build_parser().parse_args(argv)
    if args.command == "train":
        print("error: this MLTrack image serves models; it cannot run SageMaker training jobs", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(args.model_dir, "MLmodel")):
        print(
            f"error: {args.model_dir} holds no MLflow model (no MLmodel file); "
            "SageMaker unpacks the endpoint's model.tar.gz there",
            file=sys.stderr,
        )
        return 1
    from mltrack.extend import serve

    print(f"mltrack-sagemaker: serving {args.model_dir} on {args.host}:{args.port}", file=sys.stderr, flush=True)
    serve(args.model_dir, host=args.host, port=args.port, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
