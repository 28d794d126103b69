"""The MLflow model code that serves a pickled LangChain runnable. It runs WITHOUT MLTrack.

MLflow copies this file into every model directory the ``langchain`` flavour writes and
executes it when the model is loaded ("models from code"), so it imports only MLflow,
cloudpickle, pandas and LangChain, never ``mltrack``. The runnable itself is the model
artifact ``runnable`` (a cloudpickle file).

Inputs: a string or a dict of prompt variables is one call (``invoke``); a list, or a
DataFrame (what MLflow makes of any input when the model has a signature), is a batch
with one output per row.
"""

from __future__ import annotations

from typing import Any

import cloudpickle
import mlflow.models
import mlflow.pyfunc

RUNNABLE_ARTIFACT = "runnable"


def load_runnable(path: str) -> Any:
    """Unpickle the runnable at ``path``, unless MLflow's pickle switch forbids it.

    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`` refuses pickled models in MLflow's own
    flavours; it refuses this one too.
    """
    from mlflow import environment_variables
    from mlflow.exceptions import MlflowException

    allowed = getattr(environment_variables, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    if allowed is not None and not allowed.get():
        raise MlflowException(
            "this LangChain model is a pickled runnable, and MLFLOW_ALLOW_PICKLE_DESERIALIZATION is false; "
            "set it to true to load models you trust"
        )
    with open(path, "rb") as fh:
        return cloudpickle.load(fh)


def to_served(value: Any) -> Any:
    """A JSON-friendly form of a runnable's output.

    Messages become their text, documents and pydantic models plain dicts, and str
    subclasses (LangChain's ``TextAccessor``) plain strings, so a served model answers
    with JSON and a signature can be inferred from the output.
    """
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): to_served(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_served(item) for item in value]
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage

    if isinstance(value, BaseMessage):
        text = value.text  # a property in langchain-core 1.x, a method in 0.3
        return str(text if isinstance(text, str) else text())
    if isinstance(value, Document):
        return {"page_content": value.page_content, "metadata": to_served(value.metadata)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return to_served(model_dump(mode="json"))
    return value


def _rows(frame: Any) -> list[Any]:
    """The batch a DataFrame stands for: dicts of prompt variables, or plain values."""
    if all(isinstance(column, str) for column in frame.columns):
        return list(frame.to_dict(orient="records"))
    if len(frame.columns) == 1:  # an unnamed string column: MLflow's form of str inputs
        return list(frame.iloc[:, 0].tolist())
    return list(frame.to_numpy().tolist())


def predict_runnable(runnable: Any, model_input: Any) -> Any:
    """Run ``runnable`` on a single input (``invoke``) or a batch (``batch``)."""
    import numpy as np
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        return [to_served(out) for out in runnable.batch(_rows(model_input))]
    if isinstance(model_input, (pd.Series, np.ndarray)):
        model_input = model_input.tolist()
    if isinstance(model_input, list):
        return [to_served(out) for out in runnable.batch(model_input)]
    return to_served(runnable.invoke(model_input))


class RunnableModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Loads the pickled runnable and predicts with :func:`predict_runnable`."""

    # Inputs are deliberately untyped (str, dict, list or DataFrame): MLflow would try to
    # derive a signature from a type hint on ``model_input``, so it has none, and this stops
    # MLflow suggesting one each time the model loads (harmless if MLflow drops the flag).
    _skip_type_hint_validation = True

    def __init__(self) -> None:
        self.runnable: Any = None

    def load_context(self, context: Any) -> None:
        self.runnable = load_runnable(context.artifacts[RUNNABLE_ARTIFACT])

    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:  # type: ignore[no-untyped-def]
        return predict_runnable(self.runnable, model_input)


# MLflow executes this file under a generated module name; importing it from the package
# (as the flavour does, for predict_runnable) must not set MLflow's current model.
if __name__ != "mltrack_langchain.runnable_model":
    mlflow.models.set_model(RunnableModel())
