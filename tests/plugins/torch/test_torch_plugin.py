"""The torch plugin is installed, discovered, and costs nothing until it is used."""

from __future__ import annotations

import json

from conftest import run_cli, run_python


def test_mltrack_plugins_lists_the_torch_plugin_with_its_flavours_and_autologger() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    torch_plugin = plugins["torch"]
    assert torch_plugin["distribution"] == "mltrack-torch"
    assert torch_plugin["status"] == "loaded"
    assert torch_plugin["reason"] is None
    assert torch_plugin["contributes"] == {
        "autologgers": ["torch"],
        "flavours": ["torch", "torch-state-dict"],
        "settings": ["torch"],
    }
    assert "on_run_end" in torch_plugin["hooks"]


def test_import_mltrack_and_loading_plugins_do_not_import_torch() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "after_import = 'torch' in sys.modules\n"
        "mltrack.get_plugin_manager().load()\n"
        "print(json.dumps([after_import, 'mltrack_torch.plugin' in sys.modules, 'torch' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, True, False]


def test_cli_help_does_not_import_torch() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import build_cli, main\n"
        "build_cli()\n"
        "after_build = 'torch' in sys.modules\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps([after_build, 'torch' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [False, False]


def test_listing_contributions_and_other_autologgers_do_not_import_torch() -> None:
    result = run_python(
        "import sys, mltrack\n"
        "from mltrack.tracking.autologging import autologgers\n"
        "infos = {i.name: i for i in mltrack.get_plugin_manager().plugin_infos()}\n"
        "assert infos['torch'].contributes['flavours'] == ['torch', 'torch-state-dict']\n"
        "assert 'torch' in autologgers()\n"
        "print('torch' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_runs_end_without_importing_torch(sqlite_uri: str) -> None:
    result = run_python(
        "import sys, mltrack\n"
        "with mltrack.start_run():\n"
        "    mltrack.log_metric('x', 1.0)\n"
        "print('torch' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"
