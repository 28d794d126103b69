"""The system plugin is installed, discovered, and imports psutil and NVML only when a run starts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_cli, run_python

from mltrack_system import plugin


def test_mltrack_plugins_lists_the_system_plugin_with_its_settings() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    system = plugins["system"]
    assert (system["distribution"], system["status"], system["reason"]) == ("mltrack-system", "loaded", None)
    assert system["hooks"] == ["on_run_end", "on_run_start", "register_settings", "ui_run_panels"]
    assert system["contributes"] == {"settings": ["system"]}


def test_cli_help_and_loading_plugins_import_neither_psutil_nor_nvml() -> None:
    result = run_python(
        "import json, sys\n"
        "from mltrack.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "import mltrack\n"
        "mltrack.get_plugin_manager().load()\n"
        "heavy = ('psutil', 'pynvml', 'pydantic', 'mltrack_system.sampler', 'mltrack_system.host',\n"
        "         'mltrack_system.gpu')\n"
        "print(json.dumps(['mltrack_system.plugin' in sys.modules, [m for m in heavy if m in sys.modules]]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [True, []]


def test_the_ui_hook_is_optional_so_the_plugin_loads_without_mltrack_ui() -> None:
    assert plugin.ui_run_panels.mltrack_impl["optionalhook"] is True  # type: ignore[attr-defined]


def test_the_docs_show_the_hooks_of_plugin_py_unchanged() -> None:
    root = Path(__file__).resolve().parents[3]
    docs = (root / "docs" / "system-metrics.md").read_text()
    shown = re.search(r"Its\n`plugin.py`:\n\n(?:<!-- excerpt: [^>]*-->\n)?```python\n(.*?)```", docs, re.S)
    assert shown is not None
    assert shown.group(1) in (root / "mltrack-system" / "src" / "mltrack_system" / "plugin.py").read_text()
