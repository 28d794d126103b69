"""Fill an MLflow store for the UI tests: runs by MLTrack and by plain MLflow, artifacts of every
preview kind, a 100,000-step metric with one spike, a run with a hostile name, registered models.

Run as ``python seed_store.py <tracking-uri> <answer.json> [<long-steps>]`` (a fresh process, so the tests'
own MLTrack state is untouched); the answer file names what was made.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from pathlib import Path

EXPERIMENT = "ui-tests"
XSS_NAME = "<img src=x onerror=alert(1)>"
LONG_STEPS = 100_000
SPIKE_STEP = 31_337
TABLE_RUNS = 12


def tiny_png() -> bytes:
    """A valid 2x2 red PNG, built here so the tests ship no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main(uri: str, answer: Path, long_steps: int = LONG_STEPS) -> None:
    import mlflow

    import mltrack

    mltrack.configure(tracking_uri=uri)
    made: dict[str, object] = {"uri": uri, "table_runs": [], "long_steps": long_steps}

    # Runs for the table: MLTrack's own API, with params and metric curves.
    for i in range(TABLE_RUNS):
        with mltrack.start_run(f"table-{i:02d}", experiment=EXPERIMENT) as run:
            mltrack.log_params({"lr": [0.1, 0.01, 0.001][i % 3], "layers": i % 4, "optimizer": "adam"})
            for step in range(20):
                mltrack.log_metric("loss", (i + 1) / (step + 1), step=step)
            mltrack.log_metric("accuracy", i / TABLE_RUNS, step=19)
        made["table_runs"].append(run.run_id)  # type: ignore[union-attr]

    with mltrack.start_run("long-metric", experiment=EXPERIMENT) as run:
        for step in range(long_steps):
            mltrack.log_metric(
                "loss", 1.0 / (step + 1) + (100.0 if step == SPIKE_STEP % long_steps else 0.0), step=step
            )
    made["long_run"] = run.run_id
    mltrack.flush()

    # Plain MLflow: a run with a hostile name, artifacts and a NaN.
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=XSS_NAME) as plain:
        mlflow.log_params({"lr": "0.5", "note": "<b>bold?</b>"})
        mlflow.set_tag("team", "<script>alert(2)</script>")
        mlflow.log_metric("loss", 0.25, step=0)
        mlflow.log_metric("loss", float("nan"), step=1)
        mlflow.log_metric("loss", 0.125, step=2)
        mlflow.log_text("hello from mlflow\n", "notes/readme.txt")
        mlflow.log_dict({"alpha": 1, "nested": {"b": [1, 2]}}, "config.json")
        mlflow.log_text("<html><script>alert(3)</script></html>", "report.html")
        folder = Path(answer).parent / "png"
        folder.mkdir(exist_ok=True)
        (folder / "pixel.png").write_bytes(tiny_png())
        mlflow.log_artifact(str(folder / "pixel.png"), "images")
        mlflow.log_artifact(__file__, "code")
        made["plain_run"] = plain.info.run_id
        made["artifact_uri"] = plain.info.artifact_uri

    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_registered_model("churn", description="predicts churn")
    for run_id in made["table_runs"][:2]:  # type: ignore[index]
        client.create_model_version("churn", source=f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias("churn", "champion", "2")
    made["experiment_id"] = client.get_experiment_by_name(EXPERIMENT).experiment_id
    answer.write_text(json.dumps(made))


if __name__ == "__main__":
    os.environ.setdefault("MLTRACK_STRICT_PLUGINS", "1")
    main(sys.argv[1], Path(sys.argv[2]), *(int(a) for a in sys.argv[3:]))
