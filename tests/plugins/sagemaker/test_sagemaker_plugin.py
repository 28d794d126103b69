"""The sagemaker plugin is installed, discovered, and costs nothing until AWS is used."""

from __future__ import annotations

import json

from conftest import run_cli, run_python


def test_mltrack_plugins_lists_the_sagemaker_plugin_with_its_provider_command_and_settings() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    sagemaker = plugins["sagemaker"]
    assert (sagemaker["distribution"], sagemaker["status"], sagemaker["reason"]) == (
        "mltrack-sagemaker",
        "loaded",
        None,
    )
    assert sagemaker["contributes"] == {
        "commands": ["sagemaker"],
        "deploy_providers": ["sagemaker"],
        "settings": ["sagemaker"],
    }


def test_import_mltrack_loading_plugins_and_listing_providers_do_not_import_boto3() -> None:
    result = run_python(
        "import json, sys, mltrack\n"
        "from mltrack.deployment.deployments import providers\n"
        "mltrack.get_plugin_manager().load()\n"
        "found = providers()\n"
        "print(json.dumps(['sagemaker' in found, 'boto3' in sys.modules, 'botocore' in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, False, False]


def test_cli_help_does_not_import_boto3() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import build_cli, main\n"
        "build_cli()\n"
        "try:\n"
        "    main(['sagemaker', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps('boto3' in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert "build-image" in result.stdout
    assert json.loads(result.stdout.splitlines()[-1]) is False
