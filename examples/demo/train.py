"""The demo's training job: three models, tracked and registered (``make train``).

- ``demo-sklearn``: a churn classifier (scaler + logistic regression) on synthetic customer
  data, fitted under scikit-learn autologging, which logs its params, training score and the
  model with a signature; registered with the alias ``@champion``.
- ``demo-torch``: a small PyTorch regression net trained by a plain loop under PyTorch
  autologging (optimizer params, learning rate per step, the model at the end).
- ``demo-langchain``: a prompt | chat model | parser chain with LangChain's fake chat model
  (no network), logged with its tracing.

A model whose plugin is not installed is skipped with a note. The store is whatever MLTrack
is configured with (the Makefile points it at .demo/mlflow.db).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console

import mltrack

console = Console()
EXPERIMENT = "demo"
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_years", "late_payments", "usage_gb"]


def churn_data(rows: int = 2_000, seed: int = 0) -> tuple[Any, Any]:
    """Customers and whether they left: more support calls and late payments, more churn."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, rows).astype(float),
            "monthly_charges": rng.normal(70, 20, rows).round(2),
            "support_calls": rng.poisson(2, rows).astype(float),
            "contract_years": rng.choice([0.0, 1.0, 2.0], rows),
            "late_payments": rng.poisson(1, rows).astype(float),
            "usage_gb": rng.gamma(2, 10, rows).round(1),
        }
    )
    logit = (
        0.6 * frame.support_calls
        + 0.8 * frame.late_payments
        - 0.04 * frame.tenure_months
        - 0.9 * frame.contract_years
        + 0.01 * (frame.monthly_charges - 70)
        - 0.5
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, churned


def train_sklearn() -> str:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = churn_data()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    mltrack.autolog("sklearn")
    with mltrack.start_run(experiment=EXPERIMENT, run_name="churn-logreg") as run:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(x_train, y_train)
        mltrack.log_metrics({"test_accuracy": float(model.score(x_test, y_test))})
    mltrack.autolog("sklearn", disable=True)
    version = mltrack.register_model(f"runs:/{run.run_id}/model", "demo-sklearn", alias="champion")
    return f"demo-sklearn v{version} (@champion), test accuracy {model.score(x_test, y_test):.3f}"


def train_torch() -> str:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x = torch.randn(512, 6)
    y = (x @ torch.linspace(-1, 1, 6)).unsqueeze(1) + 0.1 * torch.randn(512, 1)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=50, gamma=0.5)
    mltrack.autolog("torch")
    with mltrack.start_run(experiment=EXPERIMENT, run_name="torch-mlp") as run:
        for epoch in range(150):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            mltrack.log_metric("train_loss", loss.item(), step=epoch)
    mltrack.autolog("torch", disable=True)
    version = mltrack.register_model(f"runs:/{run.run_id}/model", "demo-torch")
    return f"demo-torch v{version}, final loss {loss.item():.4f}"


def train_langchain() -> str:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    chain = (
        ChatPromptTemplate.from_template("Summarise this support ticket in five words: {ticket}")
        | FakeListChatModel(responses=["customer wants a refund", "login page fails on mobile"])
        | StrOutputParser()
    )
    mltrack.autolog("langchain")
    with mltrack.start_run(experiment=EXPERIMENT, run_name="ticket-summary"):
        summaries = chain.batch([{"ticket": "I was charged twice"}, {"ticket": "cannot log in on my phone"}])
        mltrack.log_metric("examples", len(summaries))
        mltrack.log_model(chain, "model", input_example=["I was charged twice"])
    mltrack.autolog("langchain", disable=True)
    version = mltrack.register_model(chain, "demo-langchain")
    return f"demo-langchain v{version}, e.g. {summaries[0]!r}"


def main() -> int:
    jobs: list[tuple[str, str, Callable[[], str]]] = [
        ("scikit-learn churn classifier", "sklearn", train_sklearn),
        ("PyTorch regression net", "torch", train_torch),
        ("LangChain ticket summariser", "langchain", train_langchain),
    ]
    from mltrack.tracking.autologging import autologgers

    installed = autologgers()
    console.print(f"[bold]Training the demo models[/] into {mltrack.get_settings().resolved_tracking_uri()}")
    failures = 0
    for label, plugin, job in jobs:
        if plugin not in installed:
            console.print(f'[yellow]-[/] {label}: skipped (install it with pip install "mltrack[{plugin}]")')
            continue
        start = time.perf_counter()
        with console.status(f"{label}..."):
            try:
                result = job()
            except Exception as exc:  # report and go on: one broken framework should not hide the others
                failures += 1
                console.print(f"[red]✗[/] {label}: {type(exc).__name__}: {exc}")
                continue
        console.print(f"[green]✓[/] {label}: {result} [dim]({time.perf_counter() - start:.1f} s)[/]")
    mltrack.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
