"""Packaging: one version everywhere, extras matching the plugin folders, and wheels that
install the user's way (``pip install --find-links dist "mltrack[...]"``)."""

from __future__ import annotations

import os
import subprocess
import sys
from email.parser import Parser
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _project(path: Path) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


def plugin_folders() -> list[Path]:
    return sorted(p for p in ROOT.glob("mltrack-*") if p.is_dir() and p.name != "mltrack-core")


def core_version() -> str:
    namespace: dict[str, str] = {}
    exec((ROOT / "mltrack-core/src/mltrack/_version.py").read_text(), namespace)
    return namespace["__version__"]


def test_every_package_shares_one_version() -> None:
    version = core_version()
    assert _project(ROOT)["version"] == version
    for folder in plugin_folders():
        assert _project(folder)["version"] == version, folder.name


def test_meta_package_pins_core_and_has_an_extra_per_plugin() -> None:
    meta = _project(ROOT)
    version = core_version()
    assert meta["dependencies"] == [f"mltrack-core=={version}"]
    extras = meta["optional-dependencies"]
    expected = {folder.name.removeprefix("mltrack-"): [f"{folder.name}=={version}"] for folder in plugin_folders()}
    assert {k: v for k, v in extras.items() if k != "all"} == expected
    assert sorted(extras["all"]) == sorted(req for reqs in expected.values() for req in reqs)


def test_plugins_follow_the_layout_contract() -> None:
    for folder in plugin_folders():
        plugin_id = folder.name.removeprefix("mltrack-")
        project = _project(folder)
        assert project["name"] == folder.name
        module = f"mltrack_{plugin_id}"
        assert project["entry-points"]["mltrack"] == {plugin_id: f"{module}.plugin"}
        assert (folder / "src" / module / "plugin.py").is_file()


@pytest.mark.slow
def test_wheels_install_the_user_way(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for package in [ROOT / "mltrack-core", ROOT, *plugin_folders()]:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(package)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    target = tmp_path / "site"
    # --no-deps: the third-party dependencies are already in this environment; what is
    # checked is that our wheels resolve from --find-links by the user's requirement.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(dist),
            "--target",
            str(target),
            f"mltrack[all]=={core_version()}",
            "mltrack-core",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    meta = next(target.glob("mltrack-*.dist-info/METADATA"))
    requires = Parser().parsestr(meta.read_text()).get_all("Requires-Dist") or []
    assert f"mltrack-core=={core_version()}" in requires
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", "import mltrack, sys; print(mltrack.__file__, mltrack.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    location, version = done.stdout.split()
    assert location.startswith(str(target))
    assert version == core_version()
