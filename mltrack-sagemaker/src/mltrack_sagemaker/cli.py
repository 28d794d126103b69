"""``mltrack sagemaker ...``: the serving image, built apart from a deploy (click only at import)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mltrack.extend import ModelRef
    from mltrack_sagemaker.config import SageMakerSettings


def _model(name: str, version: str) -> ModelRef:
    from mltrack.extend import resolve_model_ref

    return resolve_model_ref(name, int(version) if version.isdigit() else version)


class _EchoProgress:
    def step(self, message: str) -> None:
        click.echo(f"- {message}", err=True)

    def advance(self, done: float, total: float | None = None) -> None:
        pass


@click.group("sagemaker")
def sagemaker_group() -> None:
    """AWS SageMaker: the serving image of a registered model."""


_version = click.option("--version", "version", default="latest", show_default=True, help="Version, or @alias.")
_base = click.option("--base-image", default=None, help="Base image (default: python:<the model's Python>-slim).")


@sagemaker_group.command("build-context")
@click.argument("model")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@_version
@_base
def build_context_command(model: str, dest: Path, version: str, base_image: str | None) -> None:
    """Write the Dockerfile, requirements and wheels of MODEL's serving image into DEST (no Docker needed)."""
    from mltrack_sagemaker.image import write_build_context

    ref = _model(model, version)
    settings = _settings()
    context = write_build_context(
        ref.download(), dest, model=ref.uri, flavour=ref.flavour, base_image=base_image or settings.base_image
    )
    click.echo(str(context.path))


@sagemaker_group.command("build-image")
@click.argument("model")
@_version
@_base
@click.option("--repository", default=None, help="ECR repository (default: the settings' ecr_repository).")
@click.option("--tag", default=None, help="Image tag (default: <model>-v<version>).")
@click.option("--region", default=None, help="AWS region (default: settings, then the AWS environment).")
@click.option("--push/--no-push", default=True, show_default=True, help="Push to ECR after building.")
@click.option("--network", default=None, help="docker build --network (e.g. host).")
def build_image_command(
    model: str,
    version: str,
    base_image: str | None,
    repository: str | None,
    tag: str | None,
    region: str | None,
    push: bool,
    network: str | None,
) -> None:
    """Build MODEL's serving image with Docker and push it to ECR; prints the image URI to deploy with."""
    from mltrack_sagemaker.aws import AwsSession
    from mltrack_sagemaker.image import Docker, build_and_push

    settings = _settings()
    docker = Docker(settings.docker)
    docker.require()  # before resolving anything: say at once when this machine cannot build
    aws = AwsSession(settings, region)
    if push:
        aws.check_credentials()
        aws.require_region()
    ref = _model(model, version)
    image = build_and_push(
        aws,
        docker,
        ref,
        repository=repository or settings.ecr_repository,
        tag=tag,
        base_image=base_image or settings.base_image,
        push=push,
        network=network,
        progress=_EchoProgress(),
    )
    click.echo(image)


def _settings() -> SageMakerSettings:
    """``[tool.mltrack.plugins.sagemaker]``, validated (a bad value names the field and where it came from)."""
    from pydantic import ValidationError

    from mltrack.extend import config_error_from, get_settings
    from mltrack_sagemaker.config import SageMakerSettings

    try:
        return SageMakerSettings.model_validate(get_settings().plugins.get("sagemaker", {}))
    except ValidationError as exc:
        raise config_error_from(exc, prefix=("plugins", "sagemaker"), plugin="sagemaker") from None
