"""Test kit for MLTrack and its plugins: real local servers and conformance suites.

The suites are pytest classes, so this package needs pytest, which mltrack-core declares as
its ``testing`` extra: ``pip install "mltrack-core[testing]"`` in a plugin's test environment.
"""

from __future__ import annotations

from mltrack import process_state


def reset_state() -> None:
    """Forget everything MLTrack keeps for the life of the process: settings (and
    ``configure()`` overrides), the plugin manager, stores, the default experiment, and the
    runs still open (dropped, not ended: their store may be a server the test stopped).

    Call it between tests that change the environment or the configuration, e.g. from an
    autouse fixture::

        @pytest.fixture(autouse=True)
        def fresh_mltrack():
            reset_state()
            yield
            reset_state()
    """

    process_state.reset()
