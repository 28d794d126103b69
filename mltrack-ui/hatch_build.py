"""Wheel build hook: a wheel of mltrack-ui always carries the built front end.

The front end (``frontend/``, Next.js) is built into ``src/mltrack_ui/static`` by
``make install`` / ``make ui-build``. Building a wheel without it runs that build here
(``npm ci`` and ``npm run build``), so a wheel never ships without its pages and pip users
never need Node.js. Editable installs skip this: they serve whatever was built last.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
FRONTEND = ROOT / "frontend"
STATIC = ROOT / "src" / "mltrack_ui" / "static"


def build_frontend() -> None:
    """``npm ci`` (when node_modules is missing) and ``npm run build`` into ``STATIC``."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "mltrack-ui: the front end is not built and npm is not installed; install Node.js 20+ and "
            "run `make ui-build`, or build the wheel from a checkout where it was built"
        )
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)


class FrontendBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        if not (STATIC / "index.html").is_file():
            if not FRONTEND.is_dir():
                raise RuntimeError("mltrack-ui: neither a built front end nor its source (frontend/) is here")
            build_frontend()
