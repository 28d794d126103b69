"""Finding MLTrack's configuration files, without importing pydantic.

The plugin manager asks whether any file could hold settings before paying for the
full settings model, so ``mltrack --help`` stays fast where none exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# tomllib is new in Python 3.11; mltrack-core supports 3.10 and depends on tomli there.
if sys.version_info >= (3, 11):
    import tomllib as tomllib
else:
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE_NAME",
    "ENV_PREFIX",
    "any_config_file",
    "config_file",
    "dotenv_file",
    "pyproject_file",
    "tomllib",
]

ENV_PREFIX = "MLTRACK_"
CONFIG_FILE_NAME = "mltrack.toml"


def _find_upwards(name: str, start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def config_file() -> Path | None:
    """``MLTRACK_CONFIG_FILE`` or the nearest ``mltrack.toml`` from the working directory up."""
    explicit = os.environ.get("MLTRACK_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    return _find_upwards(CONFIG_FILE_NAME, Path.cwd())


def pyproject_file() -> Path | None:
    found = _find_upwards("pyproject.toml", Path.cwd())
    if found is None:
        return None
    try:
        data = tomllib.loads(found.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return found if "mltrack" in data.get("tool", {}) else None


def dotenv_file() -> Path | None:
    path = Path(".env")
    return path if path.is_file() else None


def any_config_file() -> bool:
    """Whether settings may come from a file (.env, mltrack.toml or [tool.mltrack])."""
    return dotenv_file() is not None or config_file() is not None or pyproject_file() is not None
