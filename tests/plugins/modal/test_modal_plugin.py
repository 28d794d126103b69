"""The Modal plugin is installed, discovered, and does not import the Modal SDK until a deployment needs it."""

from __future__ import annotations

import json

from conftest import run_cli, run_python


def test_mltrack_plugins_lists_the_modal_plugin_with_its_provider() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    modal = plugins["modal"]
    assert (modal["distribution"], modal["status"], modal["reason"]) == ("mltrack-modal", "loaded", None)
    assert modal["contributes"] == {"deploy_providers": ["modal"]}


def test_import_mltrack_loading_plugins_and_listing_providers_do_not_import_modal() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "from mltrack.deployment.deployments import providers\n"
        "after_import = 'modal' in sys.modules\n"
        "mltrack.get_plugin_manager().load()\n"
        "names = sorted(providers())\n"
        "print(json.dumps([after_import, 'modal' in names, 'modal' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [False, True, False]


def test_cli_help_does_not_import_modal() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps('modal' in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) is False
