"""``mltrack plugins new``: each kind of generated package installs, is loaded, and passes its own tests.

The four packages are generated once (module fixture) into a temporary folder and installed,
without dependencies, into a site folder of their own (``pip install --target``): the
development ``.venv`` provides MLTrack and pytest, the site folder only the new plugins, and
nothing is left in ``.venv``. Each package's tests then run as its author would run them
(``pytest`` in its folder), the four at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow

KINDS = ("provider", "flavour", "sink", "ui")
#: the hook each kind's plugin implements (its first test checks it too)
HOOKS = {
    "provider": "register_deploy_providers",
    "flavour": "register_flavours",
    "sink": "register_sinks",
    "ui": "ui_run_panels",
}


def plugin_env(site: Path) -> dict[str, str]:
    """This environment with only the generated plugins' site folder on the path (not the test plugins')."""
    return {**os.environ, "PYTHONPATH": str(site), "MLTRACK_STRICT_PLUGINS": "1"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("scaffold")
    for kind in KINDS:
        made = run_cli("plugins", "new", f"kit-{kind}", "--kind", kind, "--dir", str(root / f"mltrack-kit-{kind}"))
        assert made.returncode == 0, made.stderr
    site = root / "site"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"),
            *("--target", str(site), *(str(root / f"mltrack-kit-{kind}") for kind in KINDS)),
        ],
        check=True,
        timeout=300,
    )
    yield root, site


def test_every_kind_is_listed_as_loaded_by_mltrack_plugins(generated: tuple[Path, Path]) -> None:
    _, site = generated
    mltrack = Path(sys.executable).parent / "mltrack"
    listed = subprocess.run(
        [str(mltrack), "plugins", "--json"], capture_output=True, text=True, env=plugin_env(site), timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(listed.stdout)}
    for kind in KINDS:
        plugin = plugins[f"kit-{kind}"]
        assert (plugin["status"], plugin["distribution"]) == ("loaded", f"mltrack-kit-{kind}"), plugin
        assert HOOKS[kind] in plugin["hooks"]
    assert plugins["kit-provider"]["contributes"]["deploy_providers"] == ["kit-provider"]
    assert plugins["kit-flavour"]["contributes"]["flavours"] == ["kit-flavour"]
    assert plugins["kit-sink"]["contributes"]["settings"] == ["kit-sink"]


def test_every_generated_package_passes_its_own_tests(generated: tuple[Path, Path]) -> None:
    root, site = generated
    runs = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=root / f"mltrack-kit-{kind}",
            env=plugin_env(site),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for kind in KINDS
    }
    outputs = {kind: run.communicate(timeout=400)[0] for kind, run in runs.items()}
    failed = {kind: outputs[kind][-3000:] for kind, run in runs.items() if run.returncode != 0}
    assert not failed, failed
    # each ran its conformance suite, not nothing
    assert "passed" in outputs["provider"] and "passed" in outputs["flavour"] and "passed" in outputs["sink"]


def test_a_bad_name_and_an_existing_folder_are_refused_with_a_hint(tmp_path: Path) -> None:
    bad = run_cli("plugins", "new", "Acme_Box", "--kind", "sink", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        "Error: NAME 'Acme_Box': is not a plugin id (lower-case letters, digits and single dashes, "
        "starting with a letter)",
        "Hint: try 'acme-box'",
    ]
    (tmp_path / "mltrack-acme-box").mkdir()
    taken = run_cli("plugins", "new", "acme-box", "--kind", "sink", cwd=tmp_path)
    assert taken.returncode == 1
    assert f"Error: --dir '{tmp_path / 'mltrack-acme-box'}': already exists; nothing was written" in taken.stderr
    assert list((tmp_path / "mltrack-acme-box").iterdir()) == []
