"""Hook implementations of the ``sagemaker`` plugin (boto3 is imported only when AWS is used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mltrack

if TYPE_CHECKING:
    import click


@mltrack.hookimpl
def register_settings(register: Callable[[type[Any]], None]) -> None:
    from mltrack_sagemaker.config import SageMakerSettings

    register(SageMakerSettings)


@mltrack.hookimpl
def register_deploy_providers(register: Callable[[Any], None]) -> None:
    from mltrack_sagemaker.provider import SageMakerProvider

    register(SageMakerProvider)


@mltrack.hookimpl
def register_commands(cli: click.Group) -> None:
    from mltrack_sagemaker.cli import sagemaker_group

    cli.add_command(sagemaker_group)
