"""The ``langchain`` flavour: any LangChain ``Runnable`` (a chain, a chat model, a tool...).

MLflow's own langchain flavour accepts only "models from code" for LangChain 1.x, and a
runnable object is not code. So the runnable is written with cloudpickle as the model
artifact ``runnable`` and served by :mod:`mltrack_langchain.runnable_model`, a small
``PythonModel`` that MLflow copies into the model directory as code. The result is a plain
pyfunc model: ``mlflow.pyfunc.load_model`` loads and serves it without MLTrack installed.

Models written by MLflow's langchain flavour (``mlflow.langchain.log_model``) load too.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from mltrack import InvalidInputError, MLTrackError
from mltrack.extend import Flavour, Predictor

#: distributions a pickled runnable needs at load time, besides those of its components
BASE_REQUIREMENTS = ("mlflow", "langchain-core", "cloudpickle", "pydantic")
_NOT_A_DISTRIBUTION = {"builtins", "__main__", "mltrack", "mltrack_langchain"}


def is_runnable(model: Any) -> bool:
    """Whether ``model`` is a LangChain runnable, without importing LangChain to find out."""
    if "langchain_core" not in sys.modules:
        return False
    from langchain_core.runnables import Runnable

    return isinstance(model, Runnable)


class LangChainPredictor(Predictor):
    """MLflow's pyfunc predictor, with one output for one input.

    With a signature MLflow turns a single string or dict into a one-row DataFrame, so the
    pyfunc model answers with a one-item list; this hands back the item. A string given to
    a model whose signature names one prompt variable is taken as that variable.
    """

    def predict(self, inputs: Any, params: dict[str, Any] | None = None) -> Any:
        schema = self._model.metadata.get_input_schema()
        columnar = schema is not None and not schema.is_tensor_spec()
        if isinstance(inputs, str) and columnar and schema.has_input_names():
            names = schema.input_names()
            if len(names) == 1:
                inputs = {names[0]: inputs}
        outputs = self._model.predict(inputs, params=params)
        if columnar and isinstance(inputs, (str, dict)) and isinstance(outputs, list) and len(outputs) == 1:
            return outputs[0]
        return outputs


class LangChainFlavour(Flavour):
    """Saves, loads and serves LangChain runnables."""

    name = "langchain"
    # Models logged with plain MLflow's langchain flavour are recognised (and loaded) too.
    mlflow_flavour = "langchain"

    def can_handle(self, model: Any) -> bool:
        return is_runnable(model)

    def save(
        self,
        model: Any,
        path: Path,
        *,
        signature: Any = None,
        input_example: Any = None,
        pip_requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        import cloudpickle
        import mlflow.pyfunc

        from mltrack_langchain import runnable_model

        with tempfile.TemporaryDirectory(prefix="mltrack-langchain-") as tmp:
            pickled = Path(tmp) / f"{runnable_model.RUNNABLE_ARTIFACT}.pkl"
            try:
                with open(pickled, "wb") as fh:
                    cloudpickle.dump(model, fh)
            except Exception as exc:
                raise InvalidInputError(
                    "model",
                    model,
                    f"cannot be pickled ({type(exc).__name__}: {exc})",
                    hint="a component holds something unpicklable (a client, a lock): build it inside a "
                    "RunnableLambda, or log the chain with mlflow.langchain.log_model from code",
                ) from None
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(Path(runnable_model.__file__)),
                artifacts={runnable_model.RUNNABLE_ARTIFACT: str(pickled)},
                signature=signature,
                input_example=input_example,
                pip_requirements=pip_requirements,
                metadata=metadata,
            )

    def load(self, path: Path) -> Any:
        from mlflow.models import Model

        from mltrack_langchain.runnable_model import RUNNABLE_ARTIFACT, load_runnable

        flavors = Model.load(str(Path(path) / "MLmodel")).flavors
        artifact = (flavors.get("python_function", {}).get("artifacts") or {}).get(RUNNABLE_ARTIFACT)
        if artifact:
            return load_runnable(str(Path(path) / artifact["path"]))
        if "langchain" in flavors:
            import mlflow.langchain

            return mlflow.langchain.load_model(str(path))
        raise MLTrackError(
            f"the model at {path} is not a LangChain model: it has no {RUNNABLE_ARTIFACT!r} artifact "
            "and no MLflow langchain flavour",
            hint="load it with the flavour that wrote it (see `mltrack_flavour` in its MLmodel file)",
        )

    def load_predictor(self, path: Path) -> Predictor:
        import mlflow.pyfunc

        from mltrack_langchain.runnable_model import RUNNABLE_ARTIFACT

        pyfunc_model = mlflow.pyfunc.load_model(str(path))
        flavors = pyfunc_model.metadata.flavors
        ours = RUNNABLE_ARTIFACT in (flavors.get("python_function", {}).get("artifacts") or {})
        return LangChainPredictor(pyfunc_model, self.name) if ours else Predictor(pyfunc_model, self.name)

    def requirements(self, model: Any) -> list[str]:
        """``langchain-core``, cloudpickle, pydantic and MLflow pinned, plus each component's package."""
        from importlib import metadata

        wanted = list(BASE_REQUIREMENTS)
        owners = metadata.packages_distributions()
        for module in sorted(_component_modules(model)):
            wanted.extend(owners.get(module, [])[:1])
        pins: list[str] = []
        for distribution in dict.fromkeys(wanted):
            try:
                pins.append(f"{distribution}=={metadata.version(distribution)}")
            except metadata.PackageNotFoundError:
                if distribution == "mlflow":  # only mlflow-skinny installed
                    pins.append(f"mlflow-skinny=={metadata.version('mlflow-skinny')}")
        return pins

    def predict_for_signature(self, model: Any, input_example: Any) -> Any:
        from mltrack_langchain.runnable_model import predict_runnable

        return predict_runnable(model, input_example)


def _component_modules(model: Any) -> set[str]:
    """Top-level modules of the runnable's components (a chat model's ``langchain_openai``)."""
    from langchain_core.runnables import Runnable, RunnableLambda

    found: list[Any] = [model]
    try:
        found += [node.data for node in model.get_graph().nodes.values()]
    except Exception:  # a graph is a nicety: the model's own type still counts
        pass
    modules: set[str] = set()
    for component in found:
        if isinstance(component, RunnableLambda):
            modules.add(getattr(component.func, "__module__", None) or "builtins")
        if isinstance(component, Runnable):
            modules.add(type(component).__module__)
    return {m.split(".")[0] for m in modules} - _NOT_A_DISTRIBUTION
