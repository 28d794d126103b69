"""Modal credentials: where they come from, and Modal's errors as MLTrack's.

Modal reads a token from ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` or from the profile that
``modal token new`` writes to ``~/.modal.toml``; the provider settings may name one too. Without
any, the Modal SDK raises ``AuthError`` before it touches the network; MLTrack raises the
``CredentialsMissingError`` every provider raises, saying what to set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mltrack import CredentialsMissingError, DeploymentError

if TYPE_CHECKING:
    from mltrack_modal.config import ModalSettings

TOKEN_HINT = "run `modal token new`, or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"


def missing_credentials(action: str) -> CredentialsMissingError:
    return CredentialsMissingError(f"Modal needs an API token to {action}, and none is configured", hint=TOKEN_HINT)


def has_credentials(settings: ModalSettings) -> bool:
    """Whether a Modal token is configured (settings, environment or profile); checks nothing remotely."""
    if settings.token_id is not None and settings.token_secret is not None:
        return True
    from modal.config import config

    token = bool(config.get("token_id")) and bool(config.get("token_secret"))
    return token or bool(config.get("oauth_refresh_token"))


def client_for(settings: ModalSettings) -> Any:
    """A Modal client for the settings' token, or None to let Modal use its own configuration."""
    if settings.token_id is None or settings.token_secret is None:
        return None
    import modal

    with modal_errors("connect to Modal"):
        return modal.Client.from_credentials(
            settings.token_id.get_secret_value(), settings.token_secret.get_secret_value()
        )


@contextmanager
def modal_errors(action: str) -> Iterator[None]:
    """Turn the Modal SDK's errors into MLTrack's: a missing or refused token, no connection, the rest."""
    from modal import exception

    try:
        yield
    except exception.AuthError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no token"
        raise CredentialsMissingError(f"Modal refused to {action}: {first}", hint=TOKEN_HINT) from None
    except exception.ConnectionError as exc:
        raise DeploymentError(
            f"could not reach Modal to {action}: {exc}", hint="check the network connection to Modal's API"
        ) from None
    except exception.Error as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        detail = lines[0] if lines else type(exc).__name__
        raise DeploymentError(f"Modal could not {action}: {detail}") from None
