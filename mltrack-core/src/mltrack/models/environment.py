"""A saved model's environment, read by one rule for every place that rebuilds it.

The cloud providers (an image built for Modal, a Docker image for SageMaker) and the serving
app (its requirements check) all need the same three facts about an MLflow model directory:
its pip requirements, the Python it was saved with, and the MLTrack distribution whose plugin
provides its flavour. Reading them in one place keeps those answers identical.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

# packaging and the registry (plugin manager) are imported inside functions: `mltrack.extend` re-exports this module,
# loaded at `mltrack --help` (benchmarks/import_time.py).

# pip's own rule: `#` starts a comment at the start of a line or after whitespace (a URL's
# `#egg=` fragment is not one).
_COMMENT = re.compile(r"(^|\s)#.*$")
_PYTHON_LINE = re.compile(r"^python:\s*['\"]?(\d+)\.(\d+)", re.MULTILINE)


def running_python() -> str:
    """``major.minor`` of this interpreter."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def flavour_distribution(flavour: str | None) -> str | None:
    """The installed distribution whose plugin registers the flavour ``flavour``.

    None for a flavour of the core itself (``python``), an unknown flavour or no flavour:
    mltrack-core is always installed beside a provider, so there is nothing to add.
    """
    if not flavour:
        return None
    from mltrack.plugins.manager import get_plugin_manager

    manager = get_plugin_manager()
    contribution = manager.registry("flavours").get(flavour)
    if contribution is None:
        return None
    info = manager.info(contribution.plugin)
    return info.distribution if info is not None and info.distribution not in (None, "mltrack-core") else None


def requirement_applies(requirement: Requirement, *, platform: str = "linux") -> bool:
    """Whether ``requirement``'s environment markers hold on ``platform`` with this Python (extras off)."""
    if requirement.marker is None:
        return True
    from packaging.markers import default_environment

    environment = {key: str(value) for key, value in default_environment().items()}
    environment.update(sys_platform=platform, platform_system=platform.capitalize(), extra="")
    return requirement.marker.evaluate(environment)


@dataclass
class ModelEnvironment:
    """What a model directory needs to be loaded elsewhere (see :func:`model_environment`)."""

    model_dir: Path
    #: pip requirement lines MLflow wrote (``requirements.txt``), comments, blank lines and pip options left out
    requirements: list[str]
    #: ``major.minor`` of the Python the model was saved with, None when the model does not say
    saved_python: str | None
    #: things worth a look before rebuilding the environment (a skipped line, no requirements file)
    warnings: list[str] = field(default_factory=list)

    @property
    def python_version(self) -> str:
        """The Python to rebuild with: the model's own, else this interpreter's."""
        return self.saved_python or running_python()

    @cached_property
    def flavour(self) -> str | None:
        """The name of the model's flavour (MLTrack's tag, else MLflow's flavour keys); None when unknown."""
        if not (self.model_dir / "MLmodel").is_file():
            return None
        from mltrack.models.registry import flavour_of

        try:
            return flavour_of(self.model_dir).name
        except Exception:  # an unreadable MLmodel or an uninstalled flavour: nothing to add for it
            return None

    @cached_property
    def flavour_distribution(self) -> str | None:
        """The distribution whose plugin provides the model's flavour (None: the core's own)."""
        return flavour_distribution(self.flavour)

    def parsed_requirements(self, *, platform: str = "linux") -> list[Requirement]:
        """The requirements as ``packaging`` objects, only those whose markers hold on ``platform``
        with this Python (an image runs Linux); a line that does not parse is skipped with a warning."""
        from packaging.requirements import InvalidRequirement, Requirement

        found = []
        for line in self.requirements:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                self.warnings.append(f"requirements.txt line {line!r} is not a requirement; skipped")
                continue
            if requirement_applies(requirement, platform=platform):
                found.append(requirement)
        return found


def _requirements(model_dir: Path, warnings: list[str]) -> list[str]:
    path = model_dir / "requirements.txt"
    if not path.is_file():
        warnings.append("the model has no requirements.txt: only MLTrack's own requirements are installed")
        return []
    lines = []
    for raw in path.read_text().splitlines():
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            warnings.append(f"requirements.txt option {line!r} is not used")
            continue
        lines.append(line)
    return lines


def _saved_python(model_dir: Path) -> str | None:
    path = model_dir / "python_env.yaml"
    if not path.is_file():
        return None
    match = _PYTHON_LINE.search(path.read_text())
    return f"{match.group(1)}.{match.group(2)}" if match else None


def model_environment(model_dir: Path) -> ModelEnvironment:
    """The environment of the MLflow model directory ``model_dir``: requirements, Python, flavour's distribution.

    Reads local files only; the flavour (and its distribution) is looked up when first asked.
    """
    warnings: list[str] = []
    requirements = _requirements(model_dir, warnings)
    return ModelEnvironment(model_dir, requirements, _saved_python(model_dir), warnings)
