"""MLTrack's web UI: a JSON API over the MLflow store and the prebuilt front end that uses it."""

from mltrack_ui.hookspecs import Panel

__all__ = ["Panel"]
