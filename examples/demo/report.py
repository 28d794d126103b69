"""A presentation-ready report of the demo (``make demo-linkedin``).

Reads the demo store (whatever MLTrack is configured with; the Makefile points it at
.demo/mlflow.db) and writes ``<out>/report.html``, one self-contained page (charts inlined as
PNG data URIs, styles inline, nothing fetched), and ``<out>/charts/*.png``, one file per chart:

- the runs of the ``demo`` experiment: name, registered model, key metrics and params;
- the charts: each metric logged over steps (the PyTorch net's loss, its learning rate) and
  the single-valued metrics of each run as bars (matplotlib, Agg backend: no display needed);
- the registered models with their versions and aliases;
- sample predictions of ``demo-sklearn``: from the ``local/demo-sklearn`` endpoint when it
  serves, else from the model loaded in this process (the page says which).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mltrack

EXPERIMENT = "demo"
DEPLOYMENT = "local/demo-sklearn"
SAMPLE_MODEL = "demo-sklearn"
COLUMNS = ["tenure_months", "monthly_charges", "support_calls", "contract_years", "late_payments", "usage_gb"]
CUSTOMERS = [[2.0, 95.5, 6.0, 0.0, 4.0, 12.0], [60.0, 45.0, 0.0, 2.0, 0.0, 30.5], [14.0, 70.0, 2.0, 1.0, 1.0, 8.2]]
MAX_PARAMS = 6
MAX_METRICS = 6
MIN_CURVE_POINTS = 10
COLOURS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed"]


@dataclass
class RunRow:
    """What the report shows of one run."""

    run_id: str
    name: str
    model: str
    metrics: dict[str, float]
    params: dict[str, str]
    all_metrics: list[str]


@dataclass
class Chart:
    """One chart: its title, PNG file and bytes."""

    title: str
    path: Path
    png: bytes = field(repr=False)


@dataclass
class Predictions:
    """The sample predictions and where they came from."""

    source: str
    rows: list[tuple[list[float], Any]]


def client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(mltrack.get_settings().resolved_tracking_uri())


def collect_runs(mlflow_client: Any) -> list[RunRow]:
    experiment = mlflow_client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    models = {}
    for model in mlflow_client.search_registered_models():
        for version in mlflow_client.search_model_versions(f"name = '{model.name}'"):
            if version.run_id:
                models[version.run_id] = f"{model.name} v{version.version}"
    rows = []
    for run in mlflow_client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]):
        # the model's own metrics (test_accuracy, train_loss), not the machine's (system/...)
        ranked = sorted((k, v) for k, v in run.data.metrics.items() if not k.startswith("system/"))
        metrics = dict(sorted(ranked, key=lambda item: "." in item[0])[:MAX_METRICS])
        # values a reader can judge (C=0.5), not object reprs (<LogisticRegression>)
        params = dict(sorted((k, v) for k, v in run.data.params.items() if not v.startswith("<"))[:MAX_PARAMS])
        name = run.info.run_name or run.info.run_id[:8]
        model = models.get(run.info.run_id, "-")
        rows.append(RunRow(run.info.run_id, name, model, metrics, params, [k for k, _ in ranked]))
    return rows


def draw_charts(mlflow_client: Any, runs: list[RunRow], folder: Path) -> list[Chart]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    charts: list[Chart] = []

    def save(figure: Any, title: str, stem: str) -> None:
        path = folder / f"{stem}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)
        charts.append(Chart(title, path, path.read_bytes()))

    for run in runs:
        for key in run.all_metrics:
            history = mlflow_client.get_metric_history(run.run_id, key)
            # a curve worth a chart: many steps that change (not a counter logged twice)
            if len(history) < MIN_CURVE_POINTS or len({m.value for m in history}) < 2:
                continue
            history.sort(key=lambda m: m.step)
            figure, axes = plt.subplots(figsize=(6.4, 3.2))
            axes.plot([m.step for m in history], [m.value for m in history], color=COLOURS[len(charts) % 5])
            axes.set_title(f"{run.name}: {key}")
            axes.set_xlabel("step")
            axes.grid(alpha=0.3)
            save(figure, f"{run.name}: {key} per step", f"{run.name}-{key}".replace("/", "_"))
    for run in runs:
        single = {
            k: v
            for k, v in run.metrics.items()
            if "." not in k and len(mlflow_client.get_metric_history(run.run_id, k)) == 1
        }
        if len(single) < 2:  # one bar says nothing a table does not
            continue
        figure, axes = plt.subplots(figsize=(6.4, 0.6 + 0.45 * len(single)))
        names = list(single)
        axes.barh(names, [single[n] for n in names], color=COLOURS[len(charts) % 5])
        for y, name in enumerate(names):
            axes.text(single[name], y, f" {single[name]:.3g}", va="center")
        axes.set_title(f"{run.name}: metrics")
        axes.margins(x=0.2)
        save(figure, f"{run.name}: final metrics", f"{run.name}-metrics")
    return charts


def collect_models(mlflow_client: Any) -> list[tuple[str, str, str]]:
    rows = []
    for model in sorted(mlflow_client.search_registered_models(), key=lambda m: m.name):
        versions = mlflow_client.search_model_versions(f"name = '{model.name}'")
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(f"@{alias}")
        for version in sorted(versions, key=lambda v: int(v.version)):
            rows.append((model.name, str(version.version), " ".join(aliases.get(str(version.version), [])) or "-"))
    return rows


def sample_predictions() -> Predictions:
    try:
        deployment = mltrack.get_deployment(DEPLOYMENT).refresh()
    except Exception:  # no such deployment: fall back to the model itself
        deployment = None
    if deployment is not None and deployment.state is mltrack.DeploymentState.READY and deployment.url:
        body = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": CUSTOMERS}}).encode()
        request = urllib.request.Request(
            f"{deployment.url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
        source = f"the deployed endpoint {DEPLOYMENT} ({deployment.url}/invocations)"
    else:
        import pandas as pd

        model = mltrack.load_model(SAMPLE_MODEL, version="@champion")
        predictions = [int(p) for p in model.predict(pd.DataFrame(CUSTOMERS, columns=COLUMNS))]
        source = f"{SAMPLE_MODEL}@champion loaded in this process ({DEPLOYMENT} is not serving)"
    return Predictions(source, list(zip(CUSTOMERS, predictions, strict=True)))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()) or "-"


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #111827;
  background: #f3f4f6; }
main { max-width: 1100px; margin: 0 auto; padding: 32px; }
h1 { margin: 0 0 4px; font-size: 28px; } .sub { color: #6b7280; margin: 0 0 24px; }
section { background: #fff; border-radius: 12px; padding: 20px 24px; margin-bottom: 20px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { margin: 0 0 12px; font-size: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { color: #374151; background: #f9fafb; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #e5e7eb; border-radius: 8px; }
figcaption { color: #6b7280; font-size: 13px; } .note { color: #6b7280; font-size: 13px; }
"""


def render(
    runs: list[RunRow], charts: list[Chart], models: list[tuple[str, str, str]], predictions: Predictions | None
) -> str:
    figures = "".join(
        f'<figure><img alt="{html.escape(c.title)}" src="data:image/png;base64,'
        f'{base64.b64encode(c.png).decode()}"><figcaption>{html.escape(c.title)}</figcaption></figure>'
        for c in charts
    )
    if predictions is None:
        predicted = "<p class='note'>No predictions: demo-sklearn is not registered.</p>"
    else:
        rows = [[*(f"{v:g}" for v in inputs), str(label)] for inputs, label in predictions.rows]
        predicted = _table([*COLUMNS, "churn"], rows) + f"<p class='note'>From {html.escape(predictions.source)}.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLTrack demo report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body><main>
<h1>MLTrack demo: three frameworks, one tracker</h1>
<p class="sub">scikit-learn, PyTorch and LangChain runs tracked on MLflow, registered and served locally
&middot; {html.escape(time.strftime("%Y-%m-%d %H:%M"))}</p>
<section><h2>Runs</h2>{
        _table(
            ["run", "model", "key metrics", "params"],
            [[r.name, r.model, _pairs(r.metrics), _pairs(r.params)] for r in runs],
        )
    }</section>
<section><h2>Charts</h2><div class="charts">{figures or "<p class='note'>No metrics.</p>"}</div></section>
<section><h2>Registered models</h2>{_table(["model", "version", "aliases"], [list(m) for m in models])}</section>
<section><h2>Sample predictions of {SAMPLE_MODEL}</h2>{predicted}</section>
</main></body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(".demo/report"), help="folder for report.html and charts/")
    args = parser.parse_args(argv)
    mlflow_client = client()
    runs = collect_runs(mlflow_client)
    if not runs:
        print(f"No runs in the experiment {EXPERIMENT!r}: run `make demo` first.", file=sys.stderr)
        return 1
    charts = draw_charts(mlflow_client, runs, args.out / "charts")
    models = collect_models(mlflow_client)
    predictions = sample_predictions() if any(m[0] == SAMPLE_MODEL for m in models) else None
    page = args.out / "report.html"
    page.write_text(render(runs, charts, models, predictions), encoding="utf-8")
    print(f"{len(runs)} runs, {len(charts)} charts, {len(models)} model versions")
    if predictions is not None:
        print(f"predictions from {predictions.source}")
    print(f"report: {page.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
