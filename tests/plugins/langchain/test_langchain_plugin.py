"""The langchain plugin is installed, discovered, and costs nothing until it is used."""

from __future__ import annotations

import json

from conftest import run_cli, run_python

import mltrack
from mltrack.models.registry import infer_flavour


def test_mltrack_plugins_lists_the_langchain_plugin_with_its_flavour_and_autologger() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    langchain = plugins["langchain"]
    assert langchain["distribution"] == "mltrack-langchain"
    assert langchain["version"] == "0.1.0"
    assert langchain["status"] == "loaded"
    assert langchain["reason"] is None
    assert langchain["contributes"] == {
        "autologgers": ["langchain"],
        "flavours": ["langchain"],
        "settings": ["langchain"],
    }


def test_import_mltrack_and_loading_plugins_do_not_import_langchain() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "after_import = [m for m in ('langchain', 'langchain_core') if m in sys.modules]\n"
        "manager = mltrack.get_plugin_manager()\n"
        "manager.load()\n"
        "from mltrack.models.registry import flavours\n"
        "from mltrack.tracking.autologging import autologgers\n"
        "names = [sorted(flavours()), sorted(autologgers())]\n"
        "mltrack.autolog('langchain', disable=True)  # never enabled: nothing to undo, nothing imported\n"
        "after_load = [m for m in ('langchain', 'langchain_core') if m in sys.modules]\n"
        "print(json.dumps([after_import, 'mltrack_langchain.plugin' in sys.modules, after_load, names]))"
    )
    assert result.returncode == 0, result.stderr
    after_import, plugin_loaded, after_load, (flavours, autologgers) = json.loads(result.stdout.splitlines()[-1])
    assert after_import == [] and after_load == []
    assert plugin_loaded
    assert "langchain" in flavours and "langchain" in autologgers


def test_building_the_cli_and_its_help_do_not_import_langchain() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import build_cli, main\n"
        "build_cli()\n"
        "after_build = [m for m in ('langchain', 'langchain_core') if m in sys.modules]\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps([after_build, [m for m in ('langchain', 'langchain_core') if m in sys.modules]]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [[], []]


def test_runnables_are_inferred_as_langchain_and_other_models_are_not() -> None:
    from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    chain = ChatPromptTemplate.from_template("Say {topic}") | ParrotFakeChatModel() | StrOutputParser()
    assert infer_flavour(chain).name == "langchain"
    assert infer_flavour(ParrotFakeChatModel()).name == "langchain"
    assert infer_flavour(lambda x: x).name == "python"
    assert mltrack.get_plugin_manager().first_result("infer_flavour", model="not a runnable") is None
