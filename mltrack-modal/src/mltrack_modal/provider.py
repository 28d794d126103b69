"""The ``modal`` deploy provider: a registered model version as a Modal web endpoint.

``deploy`` builds a real ``modal.App`` (see ``modal_app``) and hands it to
``modal.runner.deploy_app``, Modal's deploy; the endpoint URL comes from the deployed function.
Modal builds the image on the first deploy and starts containers on demand, so the deployment is
``pending`` until the endpoint answers ``/health``; the core polls ``status`` until then.

Where each answer comes from:

- ``status`` asks the endpoint itself (``GET <url>/health``): Modal web endpoints are public URLs,
  so it needs no token, and it reports what users care about: whether the model answers.
- ``list`` and ``delete`` use Modal's app lookup (``modal.App.lookup``, an environment's app list)
  and ``App.stop``; they need a token and say so with ``CredentialsMissingError``.
- ``logs`` returns the app's Modal logs URL, then the most recent log lines when a token is
  configured (``App.logs.tail``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrack import DeploymentError
from mltrack.extend import (
    DeploymentState,
    DeploymentStatus,
    DeployPlan,
    DeployProvider,
    ModelRef,
    Progress,
    check_health,
    invoke,
)
from mltrack_modal.config import ModalDeploymentConfig, ModalSettings
from mltrack_modal.credentials import client_for, has_credentials, missing_credentials, modal_errors
from mltrack_modal.image import image_recipe, stage_distributions
from mltrack_modal.modal_app import (
    FUNCTION_NAME,
    TAG_DEPLOYMENT,
    TAG_MODEL,
    TAG_VERSION,
    app_name_for,
    build_app,
    expected_url,
)

if TYPE_CHECKING:
    from mltrack.extend import Deployment

#: seconds one health check may take (a cold container answers later; the next poll asks again)
HEALTH_TIMEOUT_S = 10.0
#: seconds on top of the config's request timeout before ``predict`` gives up
PREDICT_MARGIN_S = 30.0


class ModalProvider(DeployProvider[ModalDeploymentConfig]):
    """Serves registered models as Modal web endpoints (the core serving app behind ``@modal.asgi_app``)."""

    name = "modal"
    Settings = ModalSettings
    DeploymentConfig = ModalDeploymentConfig
    #: the first deploy builds the image on Modal, and a GPU container may take minutes to start
    default_timeout_s = 900.0
    poll_interval_s = 3.0

    @property
    def modal_settings(self) -> ModalSettings:
        assert isinstance(self.settings, ModalSettings)
        return self.settings

    def check_credentials(self) -> None:
        if not has_credentials(self.modal_settings):
            raise missing_credentials("deploy")

    def _environment(self, config: ModalDeploymentConfig) -> str | None:
        return config.environment or self.modal_settings.environment

    # -- plan and deploy ----------------------------------------------------------------------

    def plan(
        self, model: ModelRef, name: str, config: ModalDeploymentConfig, *, replaces: Deployment | None = None
    ) -> DeployPlan[ModalDeploymentConfig]:
        recipe = image_recipe(model.download())
        app_name = app_name_for(name, config)
        environment = self._environment(config)
        url = expected_url(self.modal_settings.workspace, environment, app_name)
        gpu = " or ".join(config.gpu_list()) or "none (CPU only)"
        most = config.max_containers if config.max_containers is not None else "unlimited"
        shown_url = url or f"https://<workspace>--{app_name}.modal.run"
        actions = [
            f"build the image: Python {recipe.python_version}; pip install {' '.join(recipe.packages) or '(nothing)'}; "
            f"copy {', '.join(f'{d.name}=={d.version}' for d in recipe.shipped)} and the files of {model.uri} "
            "from this machine",
            f"deploy the Modal app {app_name!r} (environment {environment or 'default'}) with the ASGI endpoint "
            f"function {FUNCTION_NAME!r} on GPU {gpu}",
            f"scale from {config.min_containers} to {most} containers of {config.concurrency} concurrent requests; "
            f"idle containers stop after {config.scaledown_window} s",
            f"wait until {shown_url} answers /health",
        ]
        if replaces is not None:
            old_app = replaces.details.get("app_name")
            if old_app and old_app != app_name:
                actions.append(f"stop the Modal app {old_app!r} of {replaces.id} (v{replaces.model_version})")
            else:
                actions.append(f"replace v{replaces.model_version} in place (Modal rolls the app; the URL stays)")
        resources: dict[str, Any] = {
            "app": app_name,
            "environment": environment or "default",
            "function": FUNCTION_NAME,
            "gpu": config.gpu_list() or None,
            "cpu": config.cpu,
            "memory_mib": config.memory,
            "scaling": {
                "min_containers": config.min_containers,
                "max_containers": config.max_containers,
                "buffer_containers": config.buffer_containers,
                "scaledown_window_s": config.scaledown_window,
                "concurrency": config.concurrency,
                "timeout_s": config.timeout,
            },
            "secrets": list(config.secrets),
            "image": recipe.describe(),
            "url": shown_url,
        }
        if recipe.warnings:
            resources["warnings"] = list(recipe.warnings)
            actions.extend(f"note: {warning}" for warning in recipe.warnings)
        return DeployPlan(
            provider=self.name,
            name=name,
            model=model,
            config=config,
            actions=actions,
            resources=resources,
            url=url,
            replaces=replaces,
        )

    def deploy(self, plan: DeployPlan[ModalDeploymentConfig], progress: Progress) -> DeploymentStatus:
        import modal.runner

        config = plan.config
        progress.step(f"downloading {plan.model.uri}")
        recipe = image_recipe(plan.model.download())
        app_name = app_name_for(plan.name, config)
        environment = self._environment(config)
        with tempfile.TemporaryDirectory(prefix="mltrack-modal-") as tmp:
            progress.step(f"staging {', '.join(d.name for d in recipe.shipped)} for the image")
            site_dir = stage_distributions(recipe, Path(tmp) / "site")
            built = build_app(
                recipe,
                config,
                deployment_name=plan.name,
                model_name=plan.model.name,
                model_version=plan.model.version,
                site_dir=site_dir,
                environment=environment,
            )
            progress.step(f"deploying the Modal app {app_name!r} (the first deploy builds the image: minutes)")
            with modal_errors(f"deploy the app {app_name!r}"):
                result = modal.runner.deploy_app(
                    built.app,
                    name=app_name,
                    environment_name=environment,
                    tag=f"mltrack-v{plan.model.version}",
                    client=client_for(self.modal_settings),
                )
                url = built.endpoint.get_web_url()
        if not url:
            raise DeploymentError(f"Modal deployed {app_name!r} but gave its endpoint no URL")
        replaced = plan.replaces
        if replaced is not None and replaced.details.get("app_name") not in (None, app_name):
            progress.step(f"stopping the Modal app {replaced.details['app_name']!r} of {replaced.id}")
            self._stop_app(replaced, str(replaced.details["app_name"]))
        details = {
            "app_name": app_name,
            "app_id": result.app_id,
            "environment": environment,
            "app_page_url": result.app_page_url,
            "app_logs_url": result.app_logs_url,
            "warnings": list(result.warnings),
            "deployed_at": time.time(),
            "startup_timeout_s": config.startup_timeout_s,
            "request_timeout_s": config.timeout,
        }
        return DeploymentStatus(
            DeploymentState.PENDING, url, "deployed; waiting for the endpoint to answer", details=details
        )

    # -- status, requests, logs ---------------------------------------------------------------

    def status(self, deployment: Deployment) -> DeploymentStatus:
        if not deployment.url:
            return DeploymentStatus(
                DeploymentState.FAILED if deployment.state is not DeploymentState.DELETED else deployment.state,
                None,
                deployment.message or "no endpoint URL was recorded",
            )
        health = check_health(deployment.url, HEALTH_TIMEOUT_S)
        if health.ok:
            return DeploymentStatus(DeploymentState.READY, deployment.url, "serving")
        reason = f"HTTP {health.status}: {health.detail}" if health.status else health.detail
        if health.status == 404:
            # Modal answers 404 for an endpoint whose app is stopped or was never deployed
            return DeploymentStatus(
                DeploymentState.FAILED, deployment.url, f"the endpoint is gone (the app is stopped?): {reason}"
            )
        started = float(deployment.details.get("deployed_at", 0))
        window = float(deployment.details.get("startup_timeout_s", 900))
        if time.time() - started < window:
            return DeploymentStatus(DeploymentState.PENDING, deployment.url, f"starting: {reason}")
        return DeploymentStatus(DeploymentState.FAILED, deployment.url, f"the endpoint does not answer: {reason}")

    def predict(self, deployment: Deployment, payload: dict[str, Any]) -> Any:
        if not deployment.url:
            raise DeploymentError(f"deployment {deployment.id} has no URL (state {deployment.state})")
        timeout = float(deployment.details.get("request_timeout_s", 300)) + PREDICT_MARGIN_S
        return invoke(deployment.id, deployment.url, payload, timeout)

    def logs(self, deployment: Deployment, *, tail: int = 100) -> list[str]:
        lines = []
        logs_url = deployment.details.get("app_logs_url")
        if logs_url:
            lines.append(f"Modal logs: {logs_url}")
        app_id = deployment.details.get("app_id")
        if not app_id or tail <= 0:
            return lines
        if not has_credentials(self.modal_settings):
            lines.append("(recent log lines need a Modal token: run `modal token new` or set MODAL_TOKEN_ID)")
            return lines
        import modal

        try:
            with modal_errors(f"read the logs of {deployment.id}"):
                app = modal.App.lookup(str(app_id), client=client_for(self.modal_settings))
                entries = list(app.logs.tail(tail))
        except DeploymentError as exc:  # the URL above still leads to them: say why the lines are missing
            return [*lines, f"(no recent log lines: {exc.message})"]
        lines.extend(str(getattr(entry, "message", entry)).rstrip("\n") for entry in entries)
        return lines

    # -- the target's own view: list and delete ---------------------------------------------

    def list(self) -> list[DeploymentStatus]:
        if not has_credentials(self.modal_settings):
            raise missing_credentials("list its apps")
        import modal

        client = client_for(self.modal_settings)
        environment = self.modal_settings.environment
        found = []
        with modal_errors("list its apps"):
            if environment:
                env = modal.Environment.from_name(environment, client=client)
            else:
                env = modal.Environment.from_context(client=client)
            for app in env.apps.list():
                tags = app.get_tags()
                if TAG_DEPLOYMENT not in tags:
                    continue
                details = {
                    "name": tags[TAG_DEPLOYMENT],
                    "app_name": app.name,
                    "app_id": app.app_id,
                    "model": tags.get(TAG_MODEL),
                    "version": tags.get(TAG_VERSION),
                }
                found.append(DeploymentStatus(DeploymentState.READY, None, "deployed on Modal", details=details))
        return found

    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        if not has_credentials(self.modal_settings):
            raise missing_credentials(f"stop the app of {deployment.id}")
        app_name = str(deployment.details.get("app_name") or app_name_for(deployment.name, self._config(deployment)))
        progress.step(f"stopping the Modal app {app_name!r}")
        stopped = self._stop_app(deployment, app_name)
        return DeploymentStatus(DeploymentState.DELETED, deployment.url, "stopped" if stopped else "already gone")

    def _config(self, deployment: Deployment) -> ModalDeploymentConfig:
        known = {k: v for k, v in deployment.config.items() if k in ModalDeploymentConfig.model_fields}
        return ModalDeploymentConfig.model_validate(known)

    def _stop_app(self, deployment: Deployment, app_name: str) -> bool:
        """Stop ``app_name`` if it is this deployment's; False when no such app is deployed."""
        import modal
        from modal.exception import NotFoundError

        environment = deployment.details.get("environment") or self._environment(self._config(deployment))
        client = client_for(self.modal_settings)
        with modal_errors(f"stop the app {app_name!r}"):
            try:
                app = modal.App.lookup(app_name, environment_name=environment, client=client)
            except NotFoundError:
                return False
            owner = app.get_tags().get(TAG_DEPLOYMENT)
            if owner != deployment.name:
                raise DeploymentError(
                    f"the Modal app {app_name!r} belongs to {owner or 'no MLTrack deployment'}, "
                    f"not to {deployment.id}; it was left running",
                    hint=f"stop it yourself with `modal app stop {app_name}` if it is yours",
                )
            app.stop()
        return True
