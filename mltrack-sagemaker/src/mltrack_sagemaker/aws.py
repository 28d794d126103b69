"""A boto3 session for one region, whose calls fail with MLTrack's errors instead of botocore's.

Every AWS call of the plugin goes through ``AwsSession.call``, so that missing or rejected
credentials always become ``CredentialsMissingError`` (saying what to set) and every other
failure a one-line ``DeploymentError`` naming what was being done. ``AWS_ENDPOINT_URL`` (read by
boto3 itself) sends all calls elsewhere, which is how the tests use a local moto server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mltrack import CredentialsMissingError, DeploymentError
from mltrack_sagemaker.config import SageMakerSettings

CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`; "
    "the region comes from AWS_REGION / AWS_DEFAULT_REGION or `region` in [tool.mltrack.plugins.sagemaker]"
)
REGION_HINT = (
    "set AWS_REGION (or AWS_DEFAULT_REGION), `region` in [tool.mltrack.plugins.sagemaker] or config region=...; "
    "`aws configure` stores one in your profile"
)
#: error codes meaning "these credentials are not valid", as opposed to "not allowed"
REJECTED_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AuthFailure",
}
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
NOT_FOUND = {
    "NoSuchKey",
    "NoSuchBucket",
    "NotFound",
    "404",
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "") or exc).splitlines()[0]


def is_not_found(exc: BaseException) -> bool:
    """Whether a ``ClientError`` says the resource does not exist (SageMaker says so with a
    ``ValidationException`` "Could not find ...")."""
    code = error_code(exc)
    if code in NOT_FOUND:
        return True
    return code == "ValidationException" and "could not find" in error_message(exc).lower()


class AwsSession:
    """boto3 clients for one region, built from the plugin's settings and the AWS credential chain."""

    def __init__(self, settings: SageMakerSettings, region: str | None = None) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError

        try:
            self._session = boto3.Session(
                profile_name=settings.profile,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=_secret(settings.aws_secret_access_key),
                aws_session_token=_secret(settings.aws_session_token),
                # boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, which AWS CLI v2 and the other SDKs
                # read first: honour it the same way
                region_name=region or settings.region or os.environ.get("AWS_REGION") or None,
            )
        except BotoCoreError as exc:  # ProfileNotFound from `profile` or AWS_PROFILE, a broken ~/.aws/config
            raise CredentialsMissingError(f"AWS configuration is unusable: {exc}", hint=CREDENTIALS_HINT) from None
        self._clients: dict[str, Any] = {}
        self._account: str | None = None

    @property
    def region(self) -> str | None:
        return self._session.region_name  # type: ignore[no-any-return]

    def require_region(self) -> str:
        if not self.region:
            raise CredentialsMissingError("no AWS region is set for SageMaker", hint=REGION_HINT)
        return self.region

    def check_credentials(self) -> None:
        """Raise ``CredentialsMissingError`` when the credential chain finds nothing (no keys, no
        profile, no instance role). Makes no AWS call."""
        try:
            found = self._session.get_credentials()
        except Exception as exc:  # a credential_process or SSO profile that fails to produce keys
            raise CredentialsMissingError(
                f"AWS credentials could not be loaded (region: {self.region or 'not set'}): {exc}",
                hint=CREDENTIALS_HINT,
            ) from None
        if found is None:
            raise CredentialsMissingError(
                f"no AWS credentials found for SageMaker (region: {self.region or 'not set'})", hint=CREDENTIALS_HINT
            )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            from mltrack_sagemaker import __version__

            config = Config(retries={"max_attempts": 4, "mode": "standard"}, user_agent_extra=f"mltrack/{__version__}")
            self._clients[service] = self._session.client(service, region_name=self.require_region(), config=config)
        return self._clients[service]

    def call(self, service: str, operation: str, *, doing: str, missing_ok: bool = False, **params: Any) -> Any:
        """``client(service).<operation>(**params)``; returns None instead of raising when
        ``missing_ok`` and AWS says the resource does not exist."""
        method: Callable[..., Any] = getattr(self.client(service), operation)
        try:
            with aws_errors(doing, passthrough_missing=missing_ok):
                return method(**params)
        except _Missing:
            return None

    def account_id(self) -> str:
        """The account of the credentials (also proves that AWS accepts them)."""
        if self._account is None:
            identity = self.call("sts", "get_caller_identity", doing="checking the AWS credentials")
            self._account = str(identity["Account"])
        return self._account


class _Missing(Exception):
    """Internal: a resource that ``missing_ok`` allows to be absent."""


@contextmanager
def aws_errors(doing: str, *, passthrough_missing: bool = False) -> Iterator[None]:
    """Translate botocore's exceptions raised inside the block (``doing`` says what it was doing)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CredentialsMissingError(
            f"no usable AWS credentials while {doing}: {exc}", hint=CREDENTIALS_HINT
        ) from None
    except NoRegionError:
        raise CredentialsMissingError(f"no AWS region is set ({doing})", hint=REGION_HINT) from None
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if passthrough_missing and is_not_found(exc):
            raise _Missing from None
        if code in REJECTED_CREDENTIALS:
            raise CredentialsMissingError(
                f"AWS rejected the credentials while {doing}: {code}: {message}", hint=CREDENTIALS_HINT
            ) from None
        if code in ACCESS_DENIED:
            raise DeploymentError(
                f"AWS denied {doing}: {message}",
                hint="the caller needs SageMaker, S3, ECR, IAM PassRole and CloudWatch Logs permissions "
                "(see docs/providers/sagemaker.md)",
            ) from None
        raise DeploymentError(f"{doing} failed: {code or 'error'}: {message}") from None
    except EndpointConnectionError as exc:
        raise DeploymentError(
            f"cannot reach AWS while {doing}: {exc}", hint="check the network, the region and AWS_ENDPOINT_URL"
        ) from None
    except BotoCoreError as exc:
        raise DeploymentError(f"{doing} failed: {exc}") from None
