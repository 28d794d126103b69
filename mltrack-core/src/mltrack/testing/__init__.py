"""Test kit for MLTrack and its plugins: real local servers and conformance suites."""
