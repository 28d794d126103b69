"""The sklearn plugin is installed, discovered, and costs nothing until it is used."""

from __future__ import annotations

import json

from conftest import run_cli, run_python


def test_mltrack_plugins_lists_the_sklearn_plugin_with_its_flavour_and_autologger() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    sklearn = plugins["sklearn"]
    assert sklearn["distribution"] == "mltrack-sklearn"
    assert sklearn["status"] == "loaded"
    assert sklearn["reason"] is None
    assert sklearn["contributes"] == {"autologgers": ["sklearn"], "flavours": ["sklearn"]}


def test_import_mltrack_and_loading_plugins_do_not_import_sklearn() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "after_import = 'sklearn' in sys.modules\n"
        "mltrack.get_plugin_manager().load()\n"
        "print(json.dumps([after_import, 'mltrack_sklearn.plugin' in sys.modules, 'sklearn' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, True, False]


def test_cli_help_does_not_import_sklearn() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import build_cli, main\n"
        "build_cli()\n"
        "after_build = 'sklearn' in sys.modules\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps([after_build, 'sklearn' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [False, False]


def test_listing_what_plugins_contribute_does_not_import_sklearn() -> None:
    result = run_python(
        "import sys, mltrack\n"
        "infos = {i.name: i for i in mltrack.get_plugin_manager().plugin_infos()}\n"
        "assert infos['sklearn'].contributes['flavours'] == ['sklearn']\n"
        "print('sklearn' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
