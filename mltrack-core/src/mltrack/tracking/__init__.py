"""Tracking: runs and their lifecycle, experiments, the logging API and the ``@track`` decorator,
search, autologging, offline runs and their replay, and the writer process that delivers a run's
records."""
