"""The torch plugin's panel on the UI's model page (mltrack-ui calls it through ``ui_model_panels``).

Only the version's ``MLmodel`` file is read: the summary comes from what the flavour recorded
when it saved the model, so opening the page never loads torch or the weights.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

TORCH_FLAVOURS = ("pytorch",)


def _mlmodel(source: str) -> dict[str, Any] | None:
    import yaml
    from mlflow.artifacts import download_artifacts

    from mltrack.extend import get_store

    with tempfile.TemporaryDirectory(prefix="mltrack-torch-ui-") as folder:
        try:
            path = download_artifacts(
                artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=folder, tracking_uri=get_store().tracking_uri
            )
        except Exception:  # no MLmodel there: not a model this panel can describe
            return None
        data = yaml.safe_load(Path(path).read_text())
    return data if isinstance(data, dict) else None


def model_summary_panels(model: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A "PyTorch model" key/value panel for a version saved by the torch flavours, else None."""
    mlmodel = _mlmodel(str(model.get("source") or ""))
    if mlmodel is None:
        return None
    flavors = mlmodel.get("flavors") or {}
    torch_flavor = flavors.get("pytorch")
    python = flavors.get("python_function") or {}
    state_dict = "state_dict" in str(python.get("artifacts") or "") or "state_dict" in str(python.get("loader_module"))
    if torch_flavor is None and not state_dict:
        return None
    metadata = mlmodel.get("metadata") or {}
    signature = mlmodel.get("signature") or {}
    summary = {
        "form": "state dict + factory (torch-state-dict)" if torch_flavor is None else "whole module (torch)",
        "torch version": (torch_flavor or {}).get("pytorch_version", ""),
        "saved from device": metadata.get("torch_device", ""),
        "model data": (torch_flavor or {}).get("model_data", ""),
        "python": python.get("python_version", ""),
        "signature inputs": signature.get("inputs", ""),
        "signature outputs": signature.get("outputs", ""),
    }
    return [{"title": "PyTorch model", "kind": "keyvalue", "data": {k: v for k, v in summary.items() if v}}]
