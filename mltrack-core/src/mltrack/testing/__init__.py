"""Test kit for MLTrack and its plugins: real local servers and conformance suites.

The suites are pytest classes, so this package needs pytest, which mltrack-core declares as
its ``testing`` extra: ``pip install "mltrack-core[testing]"`` in a plugin's test environment.
"""
