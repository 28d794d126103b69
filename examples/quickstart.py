"""Quickstart: track a small training job with MLTrack.

Fits a linear regression by gradient descent on synthetic data. ``@mltrack.track``
wraps the call in a run: the function's arguments become params, the returned dict's
numbers become metrics, and the loss is logged at every step inside.

Run it from any folder; with no configuration the data goes to ./mlflow.db there:

    python examples/quickstart.py
    mltrack runs list --experiment quickstart
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mltrack


def make_data(n_samples: int, n_features: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic regression data: y = X @ w + 0.5 + noise."""
    rng = np.random.default_rng(seed)
    true_w = rng.normal(size=n_features)
    x = rng.normal(size=(n_samples, n_features))
    y = x @ true_w + 0.5 + noise * rng.normal(size=n_samples)
    return x, y, true_w


@mltrack.track(experiment="quickstart")
def train(
    learning_rate: float = 0.05,
    epochs: int = 200,
    n_samples: int = 1_000,
    n_features: int = 5,
    noise: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Gradient descent on mean squared error; returns the final metrics."""
    x, y, true_w = make_data(n_samples, n_features, noise, seed)
    split = int(0.8 * n_samples)
    x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]

    w = np.zeros(n_features)
    b = 0.0
    for step in range(epochs):
        error = x_train @ w + b - y_train
        w -= learning_rate * 2 * x_train.T @ error / len(y_train)
        b -= learning_rate * 2 * float(error.mean())
        # Non-blocking: each call is validated and queued; a background thread writes batches.
        mltrack.log_metric("train_loss", float(np.mean(error**2)), step=step)
        if step % 10 == 0 or step == epochs - 1:
            val_loss = float(np.mean((x_val @ w + b - y_val) ** 2))
            mltrack.log_metric("val_loss", val_loss, step=step)

    # A dict saved as a JSON artifact of the run (model/weights.json).
    mltrack.log_dict({"weights": w.tolist(), "bias": b, "true_weights": true_w.tolist()}, "model/weights.json")

    # Returned numbers become metrics at step 0: name them apart from the per-step curves above.
    return {
        "final_train_loss": float(np.mean((x_train @ w + b - y_train) ** 2)),
        "final_val_loss": float(np.mean((x_val @ w + b - y_val) ** 2)),
        "weight_error": float(np.abs(w - true_w).max()),
    }


def main() -> None:
    metrics = train(learning_rate=0.05, epochs=200)
    latest = mltrack.search_runs("quickstart", order_by=["attributes.start_time DESC"], max_results=1)[0]
    print(f"run {latest.info.run_id} finished with status {latest.info.status}")
    for name, value in metrics.items():
        print(f"  {name} = {value:.5f}")
    print("Look at it with:")
    print("  mltrack runs list --experiment quickstart")
    print(f"  mltrack runs show {latest.info.run_id}")
    print("  mlflow ui --backend-store-uri sqlite:///mlflow.db")


if __name__ == "__main__":
    main()
