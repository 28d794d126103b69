"""MLTrack plugin for system metrics: CPU, memory, disk, network, GPU and process of every run.

Installing it is enough: each run this process starts gets a sampler thread that logs
``system/...`` metrics under MLflow's names. Importing this package imports neither psutil nor NVML.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
