"""What goes into a deployment's container image, decided before Modal is asked for anything.

The image is built once, at deploy time, and holds everything the endpoint needs, so a container
start installs nothing:

- the model's own requirements (its ``requirements.txt``), pinned: a range is pinned to the version
  installed here when that version satisfies it;
- MLTrack itself (``mltrack-core``, this plugin, and the plugin that wrote the model): they are not on
  PyPI, so their packages and their ``dist-info`` (entry points included, so plugins are found) are
  copied from this machine into ``/opt/mltrack/site``, and their own requirements are pinned like the
  model's;
- the model directory, copied to ``/opt/mltrack/model``.

The model's requirements, the Python it was saved with and its flavour's distribution are read by
``mltrack.extend.model_environment``, the rule every provider shares. The image's Python is this
interpreter's ``major.minor``: Modal runs the endpoint function serialized
(cloudpickle), which needs the same Python on both sides.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mltrack.extend import model_environment, requirement_applies

REMOTE_ROOT = "/opt/mltrack"
REMOTE_MODEL_DIR = f"{REMOTE_ROOT}/model"
REMOTE_SITE_DIR = f"{REMOTE_ROOT}/site"

#: Always installed from this machine: the serving app (core) and the endpoint function (this plugin).
BASE_DISTRIBUTIONS = ("mltrack-core", "mltrack-modal")
#: Provided by Modal in every image (installing another version would fight Modal's own).
PROVIDED_BY_MODAL = frozenset({"modal"})
#: Shipped for the one module the container imports (``remote``), which needs nothing beyond the core.
WITHOUT_REQUIREMENTS = frozenset({"mltrack-modal"})


@dataclass(frozen=True)
class ShippedDistribution:
    """An MLTrack distribution copied from this machine into the image."""

    name: str
    version: str
    package: str  # its import package
    source: Path  # where that package lives here


@dataclass(frozen=True)
class ImageRecipe:
    """Everything the image of one deployment holds."""

    python_version: str
    #: pip requirements, pinned where possible, in install order
    packages: list[str]
    shipped: list[ShippedDistribution]
    model_dir: Path
    #: things worth a look before deploying (an unpinnable requirement, another Python, ...)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, object]:
        """The recipe as plain data (for ``plan`` and the deployment record)."""
        return {
            "python": self.python_version,
            "pip": list(self.packages),
            "from_this_machine": [f"{d.name}=={d.version}" for d in self.shipped],
            "model_files": f"{self.model_dir} -> {REMOTE_MODEL_DIR}",
        }


def _mltrack_distributions() -> dict[str, metadata.Distribution]:
    """Installed MLTrack distributions by canonical name: core and every plugin of the ``mltrack`` group."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name == "mltrack-core" or any(ep.group == "mltrack" for ep in dist.entry_points):
            found.setdefault(name, dist)
    return found


def _import_package(dist: metadata.Distribution) -> str:
    """The import package of an MLTrack distribution: ``mltrack`` for the core, else its plugin's package."""
    name = canonicalize_name(dist.metadata["Name"] or "")
    if name == "mltrack-core":
        return "mltrack"
    for entry in dist.entry_points:
        if entry.group == "mltrack":
            return entry.value.split(":")[0].split(".")[0]
    return name.replace("-", "_")


def _package_source(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"the package {package!r} is not importable here")
    return Path(next(iter(spec.submodule_search_locations)))


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _pin(requirement: Requirement, warnings: list[str], origin: str) -> str:
    """``requirement`` as ``name[extras]==version`` when it can be pinned, else as written (with a warning)."""
    if requirement.url:
        return str(requirement)
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return f"{requirement.name}{extras}=={specs[0].version}"
    local = _installed_version(requirement.name)
    if local is not None and requirement.specifier.contains(local, prereleases=True):
        return f"{requirement.name}{extras}=={local}"
    warnings.append(f"{origin} requirement {str(requirement)!r} is not pinned (not installed here to pin it from)")
    return f"{requirement.name}{extras}{requirement.specifier}"


def image_recipe(model_dir: Path) -> ImageRecipe:
    """The image recipe for the MLflow model directory ``model_dir``. Reads local files only."""
    environment = model_environment(model_dir)
    installed = _mltrack_distributions()
    model_requirements = environment.parsed_requirements()
    warnings = environment.warnings

    shipped_names = [name for name in BASE_DISTRIBUTIONS if name in installed]
    flavour_dist = environment.flavour_distribution
    wanted: list[str] = [canonicalize_name(flavour_dist)] if flavour_dist else []
    wanted += [canonicalize_name(r.name) for r in model_requirements]
    for name in wanted:
        if name in installed and name not in shipped_names:
            shipped_names.append(name)
    for name in wanted:
        if name.startswith("mltrack-") and name not in installed:
            warnings.append(f"the model needs {name}, which is not installed here: install it before deploying")

    packages: dict[str, str] = {}

    def add(requirement: Requirement, origin: str) -> None:
        key = canonicalize_name(requirement.name)
        if key in packages or key in PROVIDED_BY_MODAL or key in installed or key.startswith("mltrack-"):
            return  # the model's own pin comes first; MLTrack distributions are shipped, not installed
        packages[key] = _pin(requirement, warnings, origin)

    for requirement in model_requirements:
        add(requirement, "the model's")
    shipped = []
    for name in shipped_names:
        dist = installed[name]
        package = _import_package(dist)
        shipped.append(ShippedDistribution(name, dist.version, package, _package_source(package)))
        for text in [] if name in WITHOUT_REQUIREMENTS else dist.requires or []:
            requirement = Requirement(text)
            if requirement_applies(requirement):
                add(requirement, f"{name}'s")

    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    saved_with = environment.saved_python
    if saved_with and saved_with != python_version:
        warnings.append(
            f"the model was saved with Python {saved_with}; the image runs {python_version}, this interpreter's "
            "(Modal runs the endpoint function serialized, which needs the same Python here and there)"
        )
    return ImageRecipe(python_version, list(packages.values()), shipped, model_dir, warnings)


def stage_distributions(recipe: ImageRecipe, target: Path) -> Path:
    """Copy the shipped distributions' packages and ``dist-info`` (so entry points are found) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for shipped in recipe.shipped:
        shutil.copytree(shipped.source, target / shipped.package, ignore=ignore, dirs_exist_ok=True)
        dist = metadata.distribution(shipped.name)
        info = target / f"{shipped.name.replace('-', '_')}-{shipped.version}.dist-info"
        info.mkdir(exist_ok=True)
        for member in ("METADATA", "entry_points.txt"):
            text = dist.read_text(member)
            if text is not None:
                (info / member).write_text(text)
        (info / "INSTALLER").write_text("mltrack-modal\n")
    return target
