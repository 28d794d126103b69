"""Reading runs back from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrack.errors import InvalidInputError
from mltrack.storage.store import get_store
from mltrack.tracking.experiments import get_experiment, store_errors

if TYPE_CHECKING:
    from mlflow.entities import Run


# mlflow and the runs (plugin manager) are imported inside functions, not by `import mltrack`
# (benchmarks/import_time.py).


def search_runs(
    experiments: list[str] | str | None = None,
    filter_string: str = "",
    *,
    order_by: list[str] | None = None,
    max_results: int = 1000,
    include_deleted: bool = False,
    tracking_uri: str | None = None,
) -> list[Run]:
    """Runs matching an MLflow filter (``"metrics.loss < 0.1 and params.lr = '0.01'"``).

    ``experiments`` are names or ids (default: every experiment). Queued data is
    flushed first, so a run's own logging calls are visible.
    """
    from mltrack.tracking.runs import flush

    if not isinstance(max_results, int) or max_results < 1:
        raise InvalidInputError("max_results", max_results, "must be a positive int")
    flush()
    store = get_store(tracking_uri)
    if isinstance(experiments, str):
        experiments = [experiments]
    if experiments is None:
        with store_errors(store):
            ids = [e.experiment_id for e in store.client.search_experiments()]
    else:
        ids = [get_experiment(e, tracking_uri=tracking_uri).experiment_id for e in experiments]
    from mlflow.entities import ViewType

    view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
    results: list[Run] = []
    token: str | None = None
    with store_errors(store):
        while len(results) < max_results:
            page = store.client.search_runs(
                ids,
                filter_string,
                run_view_type=view,
                max_results=min(max_results - len(results), 1000),
                order_by=order_by,
                page_token=token,
            )
            results.extend(page)
            token = page.token
            if not token:
                break
    return results
