"""MLTrack plugin for scikit-learn: the ``sklearn`` flavour and ``fit`` autologging.

Importing this package does not import scikit-learn or MLflow; they are imported when
a model is saved or loaded, or when autologging is switched on.
"""

from __future__ import annotations

from mltrack_sklearn.autolog import SklearnAutologger
from mltrack_sklearn.flavour import SklearnFlavour

__version__ = "0.1.0"

__all__ = ["SklearnAutologger", "SklearnFlavour", "__version__"]
