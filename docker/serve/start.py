"""The served model's start: fetch MLTRACK_SERVE_MODEL (models:/name/version or @alias) from the
tracking server into the container, then exec the SageMaker serving entrypoint on it."""

import os
import sys

import mlflow

uri = os.environ.get("MLTRACK_SERVE_MODEL", "")
if not uri.startswith("models:/"):
    print(f"error: MLTRACK_SERVE_MODEL={uri!r} is not a models:/ URI", file=sys.stderr)
    print("hint: set MLTRACK_SERVE_MODEL=models:/<name>/<version> (or models:/<name>@<alias>) in .env", file=sys.stderr)
    sys.exit(2)
path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path="/tmp/model")
port = os.environ.get("MLTRACK_SERVE_PORT", "8080")
args = [sys.executable, "-m", "mltrack_sagemaker.container", "serve", "--model-dir", path, "--port", port]
os.execv(args[0], args)
