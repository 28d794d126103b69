"""Shrinking a metric series to a point budget without hiding its spikes.

The series is cut into equal-count buckets; each bucket keeps its lowest and its highest
point (in step order), and the first and last points are always kept. A one-step spike
therefore survives any budget, which averaging or striding would smooth away.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MIN_POINTS = 4


def minmax_downsample(
    steps: npt.NDArray[np.float64], values: npt.NDArray[np.float64], max_points: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """At most ``max_points`` points of ``(steps, values)`` (sorted by step), extremes kept."""
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, got {max_points}")
    n = len(steps)
    if n <= max_points:
        return steps, values
    buckets = (max_points - 2) // 2
    # Bucket i holds positions [start_i, start_{i+1}); the first and last points are kept apart.
    inner = n - 2
    bucket_of = (np.arange(inner) * buckets) // inner
    inner_values = values[1:-1]
    order = np.lexsort((inner_values, bucket_of))  # by bucket, then by value
    sorted_buckets = bucket_of[order]
    starts = np.searchsorted(sorted_buckets, np.arange(buckets), side="left")
    ends = np.searchsorted(sorted_buckets, np.arange(buckets), side="right") - 1
    keep = np.unique(np.concatenate(([0], order[starts] + 1, order[ends] + 1, [n - 1])))
    return steps[keep], values[keep]
