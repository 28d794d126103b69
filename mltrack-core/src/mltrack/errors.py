"""MLTrack's exception hierarchy: every error names what was wrong and how to fix it."""

from __future__ import annotations

from typing import Any


class MLTrackError(Exception):
    """Base class of every error MLTrack raises on purpose.

    ``hint`` is a one-line suggestion that the CLI prints under the message.
    """

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        """The message without the hint (the CLI prints the hint on its own line)."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class InvalidInputError(MLTrackError, ValueError):
    """A logging call got a value it cannot accept; nothing was queued."""

    def __init__(self, field: str, value: Any, problem: str, *, hint: str | None = None) -> None:
        self.field = field
        self.value = value
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"{field} {shown}: {problem}", hint=hint)


class InvalidKeyError(InvalidInputError):
    """A metric, param or tag name that MLflow would reject."""


class InvalidMetricValueError(InvalidInputError):
    """A metric value that is not a finite number (or not a number at all)."""


class InvalidParamValueError(InvalidInputError):
    """A param value of an unsupported type, too long, or conflicting with an earlier value."""


class InvalidTagValueError(InvalidInputError):
    """A tag value that is too long or of an unsupported type."""


class ConfigError(MLTrackError):
    """A configuration value is invalid; the message names the field, value and source."""


class PluginError(MLTrackError):
    """A plugin could not be loaded or registered something invalid."""


class PluginCollisionError(PluginError):
    """Two plugins registered the same name for the same kind of object."""


class NoActiveRunError(MLTrackError):
    """A logging call was made with no run active."""

    hint = "wrap the code in `with mltrack.start_run():` or decorate it with @mltrack.track"


class RunAlreadyActiveError(MLTrackError):
    """start_run() was called while a run is active, without nested=True."""


class ExperimentNotFoundError(MLTrackError, LookupError):
    """An experiment id or name does not exist in the store."""


class RunNotFoundError(MLTrackError, LookupError):
    """A run id does not exist in the store."""


class LoggingFailedError(MLTrackError):
    """Queued data could not be written to the store after retries."""


class StoreError(MLTrackError):
    """The tracking store could not be reached or refused a request."""


class StoreUnreachableError(StoreError, ConnectionError):
    """The tracking server does not answer at all (also a ``ConnectionError``, so retry logic
    treats it as the outage it is)."""


class DeploymentError(MLTrackError):
    """A deployment could not be created, reached or removed."""


class DeploymentNotFoundError(DeploymentError, LookupError):
    """No recorded deployment has the given id."""


class CredentialsMissingError(DeploymentError):
    """A deploy provider needs credentials that are not set; the hint says which and where."""


class DeployTimeoutError(DeploymentError, TimeoutError):
    """A deployment did not become ready (or deleted) within the time allowed."""


class SpoolFullError(LoggingFailedError):
    """The spool's file system has no room: the value was not accepted (nothing half-written)."""


class RecordsRefusedWarning(UserWarning):
    """The store refused some records of a run; the rest was stored and the run ended normally.

    The refused records are kept under ``<data_dir>/quarantine/<run_id>/``, listed in the
    run's ``mltrack.refused`` tag and its ``mltrack/refused.json`` artifact.
    """


class SpoolWriteError(MLTrackError):
    """The local spool could not be written (an OSError): the call's data was not accepted."""

    def __init__(self, message: str, *, errno: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno
