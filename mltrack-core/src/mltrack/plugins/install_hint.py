"""The one way MLTrack tells users to install a plugin (the README's install story).

MLTrack is not on PyPI, and ``mltrack`` there is an unrelated project, so a bare
``pip install "mltrack[ui]"`` would install the wrong thing: every hint names the wheels
built by ``make dist`` and pins the version.
"""

from __future__ import annotations

from mltrack._version import __version__


def install_hint(extra: str) -> str:
    """The install command for the plugin behind ``extra`` (e.g. ``"sagemaker"``)."""
    return (
        f'pip install --find-links <MLTrack wheels, from `make dist`> "mltrack[{extra}]=={__version__}" '
        f"(in a checkout: pip install -e ./mltrack-{extra})"
    )
