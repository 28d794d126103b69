"""Names shared by the sampler and the UI panel."""

from __future__ import annotations

PREFIX = "system/"  # MLflow's prefix: its UI shows these metrics in the run's "System metrics" tab
PEAKS_TAG = "mltrack.system_metrics.peaks"  # and "<PEAKS_TAG>.<node id>" for each node of a multi-rank run
