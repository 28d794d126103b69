"""MLTrack's built-in behaviour, registered through the same hooks as any plugin."""

from __future__ import annotations

import functools
import platform
import socket
import subprocess
import sys
from typing import Any

from mltrack._version import __version__
from mltrack.hookspecs import hookimpl

# The plugin manager, the settings (pydantic) and the flavour and provider are imported inside the hooks: `mltrack
# --help` loads this plugin (benchmarks/import_time.py).


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=2, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def git_tags() -> dict[str, str]:
    """Commit, branch and dirty flag of the working directory's repository (cached)."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit, "mltrack.git.commit": commit}
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    if branch:
        tags["mlflow.source.git.branch"] = branch
        tags["mltrack.git.branch"] = branch
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status is not None:
        tags["mltrack.git.dirty"] = "true" if status else "false"
    return tags


@functools.lru_cache(maxsize=1)
def environment_tags() -> dict[str, str]:
    tags = {
        "mltrack.host": socket.gethostname(),
        "mltrack.python": platform.python_version(),
        "mltrack.platform": f"{sys.platform}-{platform.machine()}",
        "mltrack.version": __version__,
    }
    from mltrack.plugins.manager import get_plugin_manager

    for info in get_plugin_manager().loaded_infos():
        if info.status == "loaded" and info.version:
            tags[f"mltrack.plugin.{info.name}"] = info.version
    return tags


@hookimpl
def run_context_tags(run: Any) -> dict[str, str]:
    return {**environment_tags(), **git_tags()}


@hookimpl
def register_flavours(register: Any) -> None:
    from mltrack.python_flavour import PythonFlavour  # lazy: not on --help, which loads this plugin

    register(PythonFlavour())


@hookimpl(trylast=True)
def infer_flavour(model: Any) -> str | None:
    # The generic fallback: plugins that know the model's framework answer first.
    if callable(getattr(model, "predict", None)) or callable(model):
        return "python"
    return None


@hookimpl
def register_deploy_providers(register: Any) -> None:
    from mltrack.deployment.local_provider import LocalProvider

    register(LocalProvider)
