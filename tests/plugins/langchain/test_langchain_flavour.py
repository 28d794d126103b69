"""The langchain flavour: runnables saved as plain pyfunc models, loaded back, and served."""

from __future__ import annotations

import json
import re
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pytest
from conftest import run_python
from langchain_core.language_models.fake_chat_models import FakeListChatModel, ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from mlflow.models import Model

import mltrack
from mltrack.models.flavours import Flavour
from mltrack.models.registry import flavour_of
from mltrack.testing.flavours import FlavourConformance
from mltrack_langchain.flavour import LangChainFlavour, LangChainPredictor

TOPICS = [{"topic": "owls"}, {"topic": "bats"}]


def explainer() -> Runnable[Any, str]:
    """prompt | fake chat model | parser; the parrot model answers with the prompt it got."""
    return ChatPromptTemplate.from_template("Tell me about {topic}") | ParrotFakeChatModel() | StrOutputParser()


def as_list(value: Any) -> Any:
    """Outputs as plain lists (pandas and numpy containers included) for comparison."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


class TestLangChainFlavour(FlavourConformance):
    def flavour(self) -> Flavour:
        return LangChainFlavour()

    def make_model(self) -> Any:
        return explainer()

    def input_example(self) -> Any:
        return TOPICS

    def bad_input(self) -> Any:
        return [{"subject": "owls"}]  # not the prompt's variable

    def assert_same(self, expected: Any, got: Any) -> None:
        assert as_list(got) == as_list(expected)


class TestLangChainFlavourWithStringInputs(FlavourConformance):
    """A chain whose prompt has one variable also takes plain strings."""

    def flavour(self) -> Flavour:
        return LangChainFlavour()

    def make_model(self) -> Any:
        return (
            ChatPromptTemplate.from_template("Echo: {text}") | FakeListChatModel(responses=["ok"]) | StrOutputParser()
        )

    def input_example(self) -> Any:
        return ["first", "second"]

    def bad_input(self) -> Any:
        return [1.5, 2.5]  # the signature says strings

    def assert_same(self, expected: Any, got: Any) -> None:
        assert as_list(got) == as_list(expected)


def test_log_register_and_load_round_trip(sqlite_uri: str) -> None:
    with mltrack.start_run():
        info = mltrack.log_model(
            explainer(), "chain", input_example={"topic": "owls"}, registered_model_name="explainer"
        )
    assert info.flavour == "langchain"
    assert info.registered_model_version == 1
    assert info.signature.inputs.input_names() == ["topic"]
    loaded = mltrack.load_model("explainer")
    assert isinstance(loaded, Runnable)
    assert loaded.invoke({"topic": "owls"}) == "Tell me about owls"
    assert mltrack.register_model(explainer(), "explainer", alias="champion") == 2
    assert mltrack.load_model("explainer", "@champion").batch(TOPICS) == explainer().batch(TOPICS)


def test_the_model_directory_is_a_plain_pyfunc_model_with_pinned_requirements(tmp_path: Path) -> None:
    path = tmp_path / "model"
    flavour = LangChainFlavour()
    chain = explainer()
    flavour.save(chain, path, pip_requirements=flavour.requirements(chain), metadata={"mltrack_flavour": "langchain"})
    meta = Model.load(str(path / "MLmodel"))
    pyfunc = meta.flavors["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    code = (path / Path(pyfunc["model_code_path"]).name).read_text()
    assert not re.search(r"^\s*(import|from)\s+mltrack", code, re.MULTILINE), "the model code must not need MLTrack"
    assert (path / pyfunc["artifacts"]["runnable"]["path"]).is_file()
    requirements = (path / "requirements.txt").read_text().split()
    assert f"langchain-core=={metadata.version('langchain-core')}" in requirements
    assert f"cloudpickle=={metadata.version('cloudpickle')}" in requirements
    assert not [r for r in requirements if r.startswith("mltrack")]
    assert flavour_of(path).name == "langchain"


def test_requirements_name_the_packages_of_the_chain_components() -> None:
    requirements = LangChainFlavour().requirements(explainer())
    assert requirements[:2] == [
        f"mlflow=={metadata.version('mlflow')}",
        f"langchain-core=={metadata.version('langchain-core')}",
    ]
    assert f"pydantic=={metadata.version('pydantic')}" in requirements
    # a lambda from a module that is no installed package adds nothing
    assert LangChainFlavour().requirements(RunnableLambda(lambda x: x) | explainer()) == requirements


@pytest.mark.parametrize("signed", [True, False], ids=["with-signature", "without-signature"])
def test_load_predictor_takes_a_string_a_dict_and_a_batch(sqlite_uri: str, signed: bool) -> None:
    with mltrack.start_run():
        example = {"input_example": {"topic": "owls"}} if signed else {}
        mltrack.log_model(explainer(), "chain", registered_model_name="explainer", **example)
    predictor = mltrack.load_predictor("explainer")
    assert isinstance(predictor, LangChainPredictor)
    native = explainer()
    assert predictor.predict("owls") == native.invoke({"topic": "owls"})
    assert predictor.predict({"topic": "bats"}) == native.invoke({"topic": "bats"})
    assert predictor.predict(TOPICS) == native.batch(TOPICS)


def test_plain_mlflow_serves_a_string_a_dict_and_a_batch(sqlite_uri: str) -> None:
    native = explainer()
    with mltrack.start_run():
        unsigned = mltrack.log_model(native, "unsigned")
        by_string = mltrack.log_model(native, "by-string", input_example="owls")
        by_dict = mltrack.log_model(native, "by-dict", input_example={"topic": "owls"})
    owls, batch = native.invoke({"topic": "owls"}), native.batch(TOPICS)

    model = mlflow.pyfunc.load_model(unsigned.model_uri)
    assert model.predict("owls") == owls
    assert model.predict({"topic": "owls"}) == owls
    assert model.predict(TOPICS) == batch
    # With a signature MLflow makes a one-row frame of a single input: one output, in a list
    # (as MLflow's own langchain flavour answers).
    model = mlflow.pyfunc.load_model(by_string.model_uri)
    assert model.predict("owls") == [owls]
    assert model.predict(["owls", "bats"]) == batch
    model = mlflow.pyfunc.load_model(by_dict.model_uri)
    assert model.predict({"topic": "owls"}) == [owls]
    assert model.predict(TOPICS) == batch
    with pytest.raises(mlflow.exceptions.MlflowException, match="topic"):
        model.predict({"subject": "owls"})


def test_plain_mlflow_loads_and_serves_the_model_without_mltrack(sqlite_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run():
        info = mltrack.log_model(explainer(), "chain", input_example={"topic": "owls"})
    local = mlflow.artifacts.download_artifacts(
        info.model_uri, dst_path=str(tmp_path / "download"), tracking_uri=sqlite_uri
    )
    result = run_python(
        "import json, sys\n"
        "sys.modules['mltrack'] = None  # any import of mltrack now fails\n"
        "sys.modules['mltrack_langchain'] = None\n"
        "import mlflow.pyfunc\n"
        f"model = mlflow.pyfunc.load_model({local!r})\n"
        "single = model.predict({'topic': 'owls'})\n"
        "batch = model.predict([{'topic': 'owls'}, {'topic': 'bats'}])\n"
        "blocked = [m for m in sys.modules if m.startswith('mltrack') and sys.modules[m] is not None]\n"
        "print(json.dumps([single, batch, blocked]))\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    single, batch, imported = json.loads(result.stdout.splitlines()[-1])
    native = explainer()
    assert single == [native.invoke({"topic": "owls"})]
    assert batch == native.batch(TOPICS)
    assert imported == []


def test_a_chain_ending_in_a_chat_model_is_served_as_text(sqlite_uri: str) -> None:
    chain = ChatPromptTemplate.from_template("Tell me about {topic}") | ParrotFakeChatModel()
    with mltrack.start_run():
        info = mltrack.log_model(chain, "chain", input_example=TOPICS)
    assert [c.type.name for c in info.signature.outputs.inputs] == ["string"]
    served = mlflow.pyfunc.load_model(info.model_uri).predict(TOPICS)
    assert served == [m.content for m in chain.batch(TOPICS)]
    assert all(type(text) is str for text in served)


def test_a_runnable_that_cannot_be_pickled_is_refused_before_anything_is_written(sqlite_uri: str) -> None:
    lock = threading.Lock()

    def guarded(text: str) -> str:
        with lock:
            return text

    with mltrack.start_run() as run, pytest.raises(mltrack.InvalidInputError, match="cannot be pickled") as refused:
        mltrack.log_model(RunnableLambda(guarded) | ParrotFakeChatModel(), "chain")
    assert "from code" in str(refused.value)
    assert mlflow.MlflowClient(sqlite_uri).list_artifacts(run.run_id) == []


def test_models_written_by_mlflows_langchain_flavour_load_too(tmp_path: Path) -> None:
    from importlib import metadata

    try:  # a bare `langchain` namespace left by other langchain-* packages is not enough
        metadata.version("langchain")
    except metadata.PackageNotFoundError:
        pytest.skip("plain MLflow's langchain flavour needs the `langchain` package (requirements-dev.txt has it)")
    import mlflow.langchain

    code = tmp_path / "chain_code.py"
    code.write_text(
        "import mlflow.models\n"
        "from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel\n"
        "from langchain_core.output_parsers import StrOutputParser\n"
        "from langchain_core.prompts import ChatPromptTemplate\n"
        "prompt = ChatPromptTemplate.from_template('Tell me about {topic}')\n"
        "chain = prompt | ParrotFakeChatModel() | StrOutputParser()\n"
        "mlflow.models.set_model(chain)\n"
    )
    path = tmp_path / "mlflow-model"
    mlflow.langchain.save_model(str(code), str(path), pip_requirements=["langchain-core"])
    flavour = flavour_of(path)
    assert flavour.name == "langchain"
    loaded = flavour.load(path)
    assert loaded.invoke({"topic": "owls"}) == explainer().invoke({"topic": "owls"})
    assert flavour.load_predictor(path).predict([{"topic": "owls"}]) == [explainer().invoke({"topic": "owls"})]


def test_loading_a_directory_that_is_no_langchain_model_says_so(tmp_path: Path) -> None:
    data = tmp_path / "weights.json"
    data.write_text("{}")
    path = tmp_path / "other-model"
    mlflow.pyfunc.save_model(str(path), loader_module="some_other_framework", data_path=str(data))
    with pytest.raises(mltrack.MLTrackError, match="not a LangChain model"):
        LangChainFlavour().load(path)


def test_mlflows_switch_against_unpickling_refuses_the_runnable_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model"
    LangChainFlavour().save(explainer(), path)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    with pytest.raises(mlflow.exceptions.MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        LangChainFlavour().load(path)
    with pytest.raises(mlflow.exceptions.MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.pyfunc.load_model(str(path))
