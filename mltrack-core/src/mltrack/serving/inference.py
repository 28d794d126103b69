"""Scoring: one request or a batch of them through the model, and predictions as JSON.

A batch is the concatenation of its requests' rows; the model's output is split back by
the same row counts. A batch that fails, or whose output does not have one row per input
row, is predicted again one request at a time, so only a request that fails on its own
gets an error. Runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import itertools
import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from mltrack.serving.protocol import ModelInput, error_body
from mltrack.serving.schema import InputSpec, compile_signature

if TYPE_CHECKING:
    from mltrack.serving.loading import ServedModel

# pandas (about 0.5 s) is imported only for models that take a DataFrame; numpy-only requests skip it.

logger = logging.getLogger("mltrack.serving")

MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Outcome:
    """What one request gets back: an HTTP status and a JSON body."""

    status: int
    body: bytes


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _mlflow_answer(exc: BaseException) -> tuple[int, str] | None:
    """The status and error code MLflow's scoring server gives an ``MlflowException`` (its own), else None."""
    exceptions = sys.modules.get("mlflow.exceptions")
    if exceptions is None or not isinstance(exc, exceptions.MlflowException):
        return None
    return int(exc.get_http_status_code()), str(exc.error_code)


def failure(exc: BaseException) -> Outcome:
    """The answer to a request whose prediction raised ``exc``, as MLflow's scoring server answers it.

    MLflow treats any exception from ``predict`` as the input's fault (400 ``BAD_REQUEST``),
    and an ``MlflowException`` (schema enforcement, bad params) with its own status and error
    code; clients written against MLflow rely on that, so MLTrack answers the same. The
    message is one line naming the exception; the traceback goes to the server log only.
    """
    mlflow_answer = _mlflow_answer(exc)
    if mlflow_answer is not None:
        status, code = mlflow_answer
        message = getattr(exc, "message", None) or str(exc)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        if status >= 500:
            logger.error("mltrack serve: the model raised %s", _one_line(exc), exc_info=exc)
        return Outcome(status, error_body(code, message))
    logger.error("mltrack serve: the model raised %s", _one_line(exc), exc_info=exc)
    return Outcome(400, error_body("BAD_REQUEST", f"the model failed on this input: {_one_line(exc)}"))


def internal_failure(exc: BaseException) -> Outcome:
    """The answer when the server itself failed (a bug, not the model or the input): 500."""
    logger.error("mltrack serve: scoring failed: %s", _one_line(exc), exc_info=exc)
    return Outcome(500, error_body("INTERNAL_ERROR", f"internal error while scoring: {_one_line(exc)}"))


# -- JSON ------------------------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    """orjson's fallback for what it does not serialize itself."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    module = type(obj).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if obj is pd.NaT or obj is pd.NA:
            return None
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            return jsonable(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if hasattr(obj, "tolist"):  # torch tensors and other array types
        return obj.tolist()
    if hasattr(obj, "__float__"):
        return float(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def jsonable(predictions: Any) -> Any:
    """Predictions in MLflow's JSON shape: a DataFrame as records, a Series as a list."""
    module = type(predictions).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(predictions, pd.DataFrame):
            return predictions.to_dict(orient="records")
        if isinstance(predictions, pd.Series):
            return predictions.tolist()
    return predictions


def predictions_body(predictions: Any) -> Outcome:
    try:
        body = orjson.dumps(
            {"predictions": jsonable(predictions)},
            default=_default,
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )
    except (TypeError, orjson.JSONEncodeError) as exc:
        logger.error(
            "mltrack serve: predictions of type %s are not JSON serializable: %s", type(predictions).__name__, exc
        )
        return Outcome(
            500,
            error_body(
                "INTERNAL_ERROR",
                f"the model's predictions ({type(predictions).__name__}) cannot be sent as JSON: {exc}",
            ),
        )
    return Outcome(200, body)


# -- batches ---------------------------------------------------------------------------------------


def _array(values: list[Any], dtype: Any) -> np.ndarray:
    if dtype is None:
        return np.asarray(values)
    if dtype.kind == "O":
        # element by element: a list of equal-length lists must stay a column of lists
        out = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            out[i] = value
        return out
    return np.asarray(values, dtype=dtype)


def combine(inputs: Sequence[ModelInput], spec: InputSpec) -> Any:
    """The model input for ``inputs`` (all of one batch key): their rows, concatenated."""
    first = inputs[0]
    if first.kind in ("columns", "frame"):
        import pandas as pd

        dtypes = {c.name: c.dtype for c in spec.columns} if first.kind == "columns" else {}
        columns = {}
        for name in first.data:
            values = (
                first.data[name]
                if len(inputs) == 1
                else list(itertools.chain.from_iterable(item.data[name] for item in inputs))
            )
            columns[name] = _array(values, dtypes.get(name)) if first.kind == "columns" else values
        return pd.DataFrame(columns)
    if len(inputs) == 1:
        return first.data
    if first.kind == "tensor":
        return np.concatenate([item.data for item in inputs])
    if first.kind == "tensors":
        return {name: np.concatenate([item.data[name] for item in inputs]) for name in first.data}
    raise ValueError(f"inputs of kind {first.kind!r} cannot be batched")  # pragma: no cover - key is None


def split(output: Any, sizes: Sequence[int]) -> list[Any] | None:
    """``output`` cut into one part per request (``sizes`` rows each), or None when it does
    not have exactly one row per input row."""
    total = sum(sizes)
    bounds = list(itertools.accumulate(sizes, initial=0))
    module = type(output).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(output, (pd.DataFrame, pd.Series)) and len(output) == total:
            return [output.iloc[a:b] for a, b in itertools.pairwise(bounds)]
        return None
    if isinstance(output, np.ndarray):
        if output.ndim >= 1 and output.shape[0] == total:
            return [output[a:b] for a, b in itertools.pairwise(bounds)]
        return None
    if isinstance(output, (list, tuple)) and len(output) == total:
        return [output[a:b] for a, b in itertools.pairwise(bounds)]
    if isinstance(output, dict) and output:
        values = list(output.values())
        if all(hasattr(v, "__len__") and not isinstance(v, (str, bytes)) and len(v) == total for v in values):
            return [{k: v[a:b] for k, v in output.items()} for a, b in itertools.pairwise(bounds)]
        return None
    if hasattr(output, "shape") and hasattr(output, "__getitem__") and getattr(output, "shape", (None,))[0] == total:
        return [output[a:b] for a, b in itertools.pairwise(bounds)]  # torch tensors and the like
    return None


class Scorer:
    """The model behind the app: predicts one request or a batch of them."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.spec = compile_signature(model.signature)
        self.batching = model.batchable
        self._lock = threading.Lock()
        #: calls of ``score``/``score_one`` running now (a server's shutdown asks)
        self.active = 0

    def _enter(self) -> None:
        with self._lock:
            self.active += 1

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def score_one(self, item: ModelInput) -> Outcome:
        self._enter()
        try:
            return self._score_one(item)
        finally:
            self._leave()

    def _score_one(self, item: ModelInput) -> Outcome:
        try:
            data = combine([item], self.spec)
            output = self.model.predictor.predict(data, params=item.params)
        except Exception as exc:
            return failure(exc)
        return predictions_body(output)

    def score(self, inputs: Sequence[ModelInput]) -> list[Outcome]:
        """One outcome per input, in order; a batch when there are several."""
        self._enter()
        try:
            return self._score(inputs)
        finally:
            self._leave()

    def _score(self, inputs: Sequence[ModelInput]) -> list[Outcome]:
        if len(inputs) == 1:
            return [self._score_one(inputs[0])]
        try:
            output = self.model.predictor.predict(combine(inputs, self.spec), params=inputs[0].params)
        except Exception as exc:
            # one bad request must not fail the others: find it by predicting each alone
            logger.info(
                "mltrack serve: a batch of %d requests failed (%s); predicting them one by one",
                len(inputs),
                _one_line(exc),
            )
            return [self._score_one(item) for item in inputs]
        parts = split(output, [item.rows for item in inputs])
        if parts is None:
            with self._lock:
                if self.batching:
                    logger.warning(
                        "mltrack serve: the %s model returned %s for a batch of %d rows, not one row per input "
                        "row; batching is off from now on",
                        self.model.flavour,
                        type(output).__name__,
                        sum(item.rows for item in inputs),
                    )
                self.batching = False
            return [self._score_one(item) for item in inputs]
        return [predictions_body(part) for part in parts]
