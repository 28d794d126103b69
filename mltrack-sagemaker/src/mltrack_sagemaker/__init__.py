"""MLTrack's AWS SageMaker deploy provider (boto3 only; the ``sagemaker`` SDK is not needed)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
