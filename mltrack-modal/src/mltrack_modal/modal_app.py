"""Build the real ``modal.App`` of one deployment: image, GPU and scaling, and the ASGI endpoint.

The endpoint function is defined here, per deployment, and sent to Modal serialized: the model's
path, batching options and the rest travel in its closure. Modal runs it in the container; under
``.local()`` it runs in this process and serves the model directory on this machine instead of the
one baked into the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrack_modal.config import ModalDeploymentConfig
from mltrack_modal.image import REMOTE_MODEL_DIR, REMOTE_SITE_DIR, ImageRecipe

if TYPE_CHECKING:
    import modal

#: The name of the endpoint function in every app MLTrack deploys.
FUNCTION_NAME = "serve"
#: App tags that mark an app as MLTrack's (``list`` and ``delete`` read them).
TAG_DEPLOYMENT = "mltrack.deployment"
TAG_MODEL = "mltrack.model"
TAG_VERSION = "mltrack.version"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def app_name_for(deployment_name: str, config: ModalDeploymentConfig) -> str:
    """The Modal app name (and URL label): ``config.app_name`` or ``mltrack-<deployment name>``."""
    if config.app_name:
        return config.app_name
    candidate = f"mltrack-{deployment_name}"
    return candidate if len(candidate) <= 63 else deployment_name


def expected_url(workspace: str | None, environment: str | None, app_name: str) -> str | None:
    """The endpoint URL Modal gives ``app_name`` (``https://<workspace>[-<env>]--<label>.modal.run``).

    None when the workspace is unknown: the real URL is known after the deploy either way. A
    non-default environment adds its web suffix, which by default is the environment's name.
    """
    if not workspace:
        return None
    source = workspace if environment in (None, "", "main") else f"{workspace}-{environment}"
    return f"https://{source}--{app_name}.modal.run"


def app_tags(deployment_name: str, model_name: str, model_version: int) -> dict[str, str]:
    """Tags put on the app (Modal allows letters, digits, '-', '.', '_', at most 63 characters)."""
    model = _TAG_UNSAFE.sub("_", model_name)[:63] or "model"
    return {TAG_DEPLOYMENT: deployment_name, TAG_MODEL: model, TAG_VERSION: str(model_version)}


@dataclass(frozen=True)
class BuiltApp:
    """A deployment's ``modal.App`` and its endpoint function."""

    app: modal.App
    endpoint: modal.Function[..., Any, Any]
    name: str


def build_image(recipe: ImageRecipe, site_dir: Path | None) -> modal.Image:
    """The container image: Python, pinned packages, MLTrack from ``site_dir``, the model files."""
    import modal

    image = modal.Image.debian_slim(python_version=recipe.python_version)
    if recipe.packages:
        image = image.pip_install(*recipe.packages)
    image = image.env({"PYTHONPATH": REMOTE_SITE_DIR, "MLTRACK_STRICT_PLUGINS": "1"})
    if site_dir is not None:
        image = image.add_local_dir(site_dir, REMOTE_SITE_DIR, copy=True)
    return image.add_local_dir(recipe.model_dir, REMOTE_MODEL_DIR, copy=True)


def build_app(
    recipe: ImageRecipe,
    config: ModalDeploymentConfig,
    *,
    deployment_name: str,
    model_name: str,
    model_version: int,
    site_dir: Path | None,
    environment: str | None = None,
) -> BuiltApp:
    """The ``modal.App`` of deployment ``deployment_name``, serving ``recipe.model_dir`` with ``config``.

    Builds objects only (no network). ``site_dir`` holds the staged MLTrack distributions; None
    builds the app without them (enough to run it with ``.local()``).
    """
    import modal

    app_name = app_name_for(deployment_name, config)
    tags = app_tags(deployment_name, model_name, model_version)
    app = modal.App(app_name, image=build_image(recipe, site_dir), tags=tags, include_source=False)
    local_model_dir = str(recipe.model_dir)
    max_batch_size, max_wait_ms = config.max_batch_size, config.max_wait_ms

    def serve() -> Any:
        import modal

        from mltrack_modal.remote import serving_app

        model_dir = local_model_dir if modal.is_local() else REMOTE_MODEL_DIR
        return serving_app(
            model_dir,
            model_name=model_name,
            model_version=model_version,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
        )

    secrets = [modal.Secret.from_name(name, environment_name=environment) for name in config.secrets]
    endpoint = modal.asgi_app(label=app_name)(serve)
    endpoint = modal.concurrent(max_inputs=config.concurrency)(endpoint)
    function: modal.Function[..., Any, Any] = app.function(
        serialized=True,
        name=FUNCTION_NAME,
        secrets=secrets,
        **config.modal_function_options(),
    )(endpoint)
    return BuiltApp(app=app, endpoint=function, name=app_name)
