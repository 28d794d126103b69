"""Deployments as the UI shows them: the recorded ones, optionally with live provider status.

The deployments API came with the deploy providers; against an older mltrack-core the
page is simply empty (and says why) rather than broken.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

from mltrack.extend import mask_secrets

logger = logging.getLogger("mltrack.ui")

REFRESH_WORKERS = 8


def deployments_module() -> Any | None:
    try:
        from mltrack import list_deployments
        from mltrack.extend import refresh_deployment
    except ImportError:
        return None
    return SimpleNamespace(list_deployments=list_deployments, refresh=refresh_deployment)


def list_deployments(model_name: str | None = None, *, refresh: bool = False) -> dict[str, Any]:
    """``{"deployments": [...], "available": bool, "reason": str | None}``."""
    module = deployments_module()
    if module is None:
        return {"deployments": [], "available": False, "reason": "this mltrack-core has no deployments module"}
    records = module.list_deployments(model_name=model_name)
    errors: dict[str, str] = {}
    if refresh and records:

        def live(record: Any) -> Any:
            try:
                return module.refresh(record)
            except Exception as exc:  # one unreachable provider must not blank the page
                errors[record.id] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                return record

        with ThreadPoolExecutor(max_workers=min(REFRESH_WORKERS, len(records))) as pool:
            records = list(pool.map(live, records))
    rows = []
    for record in records:
        # Records should hold no secrets; masking keeps a provider's mistake (a password in an
        # env var or a URL) off the screen.
        row = mask_secrets(record.as_dict())
        row["refresh_error"] = mask_secrets(errors.get(record.id))
        rows.append(row)
    return {"deployments": rows, "available": True, "reason": None}
