"""The dashboard's numbers and the experiments list, counted in SQL where the store allows."""

from __future__ import annotations

from typing import Any

from mltrack.extend import MlflowStore, mask_secrets
from mltrack_ui.runs_table import RunsQuery, search_runs_page
from mltrack_ui.sql_store import sqlalchemy_store

RECENT_RUNS = 10
CLIENT_COUNT_LIMIT = 5000
DASHBOARD_EXPERIMENTS = 8
BEST_METRICS = 6
# A metric whose name says it is an error or a cost is best when lowest, a score when highest; a
# metric whose name says neither (learning_rate, grad_norm) has no "best" and is left out.
LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mse", "mae", "rmse", "mape", "perplexity", "latency", "wer", "cer"}
)
HIGHER_IS_BETTER = frozenset(
    {"acc", "accuracy", "f1", "auc", "roc", "precision", "recall", "r2", "score", "map", "bleu", "rouge", "iou", "dice"}
)


def run_counts(store: MlflowStore, experiment_ids: list[str]) -> dict[str, dict[str, int]]:
    """experiment id -> status -> number of active runs."""
    backend = sqlalchemy_store(store)
    counts: dict[str, dict[str, int]] = {e: {} for e in experiment_ids}
    if backend is not None:
        import sqlalchemy as sa
        from mlflow.store.tracking.dbmodels.models import SqlRun

        stmt: Any = (
            sa.select(SqlRun.experiment_id, SqlRun.status, sa.func.count())
            .where(SqlRun.lifecycle_stage == "active", SqlRun.experiment_id.in_([int(e) for e in experiment_ids]))
            .group_by(SqlRun.experiment_id, SqlRun.status)
        )
        with backend.ManagedSessionMaker() as session:
            for experiment_id, status, count in session.execute(stmt):
                counts[str(experiment_id)][status] = count
        return counts
    # A tracking server has no count endpoint: page through run infos, up to a limit.
    for experiment_id in experiment_ids:
        token = None
        seen = 0
        while seen < CLIENT_COUNT_LIMIT:
            page = store.client.search_runs([experiment_id], max_results=1000, page_token=token)
            for run in page:
                counts[experiment_id][run.info.status] = counts[experiment_id].get(run.info.status, 0) + 1
            seen += len(page)
            token = page.token
            if not token:
                break
    return counts


def list_experiments(store: MlflowStore) -> list[dict[str, Any]]:
    experiments = store.client.search_experiments(max_results=1000)
    counts = run_counts(store, [e.experiment_id for e in experiments])
    return [
        {
            "experiment_id": e.experiment_id,
            "name": e.name,
            "lifecycle_stage": e.lifecycle_stage,
            "creation_time": e.creation_time,
            "last_update_time": e.last_update_time,
            "tags": {k: v for k, v in (e.tags or {}).items()},
            "run_counts": counts.get(e.experiment_id, {}),
        }
        for e in experiments
    ]


def dashboard(store: MlflowStore) -> dict[str, Any]:
    experiments = list_experiments(store)
    totals: dict[str, int] = {}
    for experiment in experiments:
        for status, count in experiment["run_counts"].items():
            totals[status] = totals.get(status, 0) + count
    ids = [e["experiment_id"] for e in experiments]
    recent = search_runs_page(store, RunsQuery(experiment_ids=ids, page_size=RECENT_RUNS, columns=[]))
    models = store.client.search_registered_models(max_results=1000)
    newest = sorted(experiments, key=lambda e: e["last_update_time"] or 0, reverse=True)
    names = {e["experiment_id"]: e["name"] for e in experiments}
    # each run row carries its experiment's name, so the page never shows the bare id first
    named = [{**row, "experiment_name": names.get(row["experiment_id"])} for row in recent["runs"]] if ids else []
    best = [{**row, "experiment_name": names.get(row["experiment_id"])} for row in best_metrics(store)]
    return {
        "tracking_uri": mask_secrets(store.tracking_uri),
        "experiments": len(experiments),
        "status_counts": totals,
        "recent_runs": named,
        "models": len(models),
        "experiment_list": [
            {"experiment_id": e["experiment_id"], "name": e["name"], "run_counts": e["run_counts"]}
            for e in newest[:DASHBOARD_EXPERIMENTS]
        ],
        "experiment_names": names,
        "best_metrics": best,
    }


def goal(key: str) -> str | None:
    """ "min" or "max" where the metric's name says which is better, else None."""
    words = set(key.lower().replace("-", "_").replace(".", "_").replace("/", "_").split("_"))
    if words & LOWER_IS_BETTER:
        return "min"
    if words & HIGHER_IS_BETTER:
        return "max"
    return None


def best_metrics(store: MlflowStore, limit: int = BEST_METRICS) -> list[dict[str, Any]]:
    """The metrics most runs have whose names say which way is better (losses and errors down,
    accuracies and scores up), each with its best latest value and the run that holds it.

    Read from MLflow's ``latest_metrics`` table; an ``http://`` store has no such query and
    gets an empty list (the dashboard then leaves the card out).
    """
    backend = sqlalchemy_store(store)
    if backend is None:
        return []
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlRun

    active = sa.and_(
        SqlLatestMetric.run_uuid == SqlRun.run_uuid,
        SqlRun.lifecycle_stage == "active",
        SqlLatestMetric.is_nan == sa.false(),
    )
    common: Any = (
        sa.select(SqlLatestMetric.key, sa.func.count())
        .select_from(SqlLatestMetric)
        .join(SqlRun, active)
        .group_by(SqlLatestMetric.key)
        .order_by(sa.func.count().desc(), SqlLatestMetric.key)
        .limit(limit * 4)
    )
    best: list[dict[str, Any]] = []
    with backend.ManagedSessionMaker() as session:
        for key, runs in session.execute(common).all():
            direction = goal(key)
            if direction is None:
                continue
            if len(best) == limit:
                break
            lowest = direction == "min"
            stmt: Any = (
                sa.select(SqlLatestMetric.value, SqlRun.run_uuid, SqlRun.name, SqlRun.experiment_id)
                .select_from(SqlLatestMetric)
                .join(SqlRun, active)
                .where(SqlLatestMetric.key == key)
                .order_by(SqlLatestMetric.value.asc() if lowest else SqlLatestMetric.value.desc())
                .limit(1)
            )
            row = session.execute(stmt).first()
            if row is None:
                continue
            best.append(
                {
                    "key": key,
                    "value": row[0],
                    "goal": direction,
                    "runs": runs,
                    "run_id": row[1],
                    "run_name": row[2],
                    "experiment_id": str(row[3]),
                }
            )
    return best
