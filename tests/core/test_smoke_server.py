import mlflow

import mltrack


def test_run_round_trip(tracking_uri: str) -> None:
    with mltrack.start_run("rt") as run:
        mltrack.log_metric("loss", 0.5, step=1)
    got = mlflow.MlflowClient(tracking_uri).get_run(run.run_id)
    assert got.data.metrics == {"loss": 0.5}
