"""MLTrack plugin for PyTorch: the ``torch`` and ``torch-state-dict`` flavours, device-aware
loading, and autologging of plain training loops.

Importing this package does not import torch or MLflow; they are imported when a model is
saved or loaded, or when autologging is switched on.
"""

from __future__ import annotations

from mltrack_torch.autolog import TorchAutologger
from mltrack_torch.flavour import TorchFlavour, TorchStateDictFlavour
from mltrack_torch.loading import load_model
from mltrack_torch.state_dict import StateDict

__version__ = "0.1.0"

__all__ = ["StateDict", "TorchAutologger", "TorchFlavour", "TorchStateDictFlavour", "__version__", "load_model"]
