"""The ``sagemaker`` deploy provider: a registered model version as a SageMaker endpoint.

``deploy`` packages the MLflow model directory as ``model.tar.gz``, uploads it to S3, creates a
SageMaker model (the serving image + that archive + the execution role), an endpoint config
(instances or serverless) and the endpoint, and returns ``pending``; the core then polls
``status`` until the endpoint is ``InService`` (ready) or ``Failed`` (with SageMaker's
``FailureReason``). Deploying the same name again creates a new model and config and swaps the
endpoint to them with ``UpdateEndpoint`` (the old config serves until the new one is in service);
the superseded model and config are deleted once the update has finished.

Everything is boto3: ``sagemaker`` for the control plane, ``sagemaker-runtime`` for ``predict``,
``logs`` for the endpoint's CloudWatch log group, ``s3``, ``sts`` and ``ecr``.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mltrack import ConfigError, CredentialsMissingError, DeploymentError, InvalidInputError
from mltrack.extend import DeploymentState, DeploymentStatus, DeployPlan, DeployProvider, ModelRef, Progress
from mltrack_sagemaker.aws import AwsSession, aws_errors, error_code, error_message
from mltrack_sagemaker.config import SageMakerDeploymentConfig, SageMakerSettings
from mltrack_sagemaker.image import Docker, build_and_push, ecr_image_exists, ecr_image_uri, image_tag
from mltrack_sagemaker.names import (
    TAG_DEPLOYMENT,
    TAG_VERSION,
    aws_tags,
    default_bucket,
    invocation_url,
    model_data_key,
    resource_name,
)
from mltrack_sagemaker.packaging import package_model

if TYPE_CHECKING:
    from mltrack.extend import Deployment

PENDING_STATES = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
FAILED_STATES = {"Failed", "UpdateRollbackFailed", "OutOfService"}
ROLE_HINT = (
    "pass config execution_role_arn='arn:aws:iam::<account>:role/<name>' or set `execution_role_arn` in "
    "[tool.mltrack.plugins.sagemaker] (MLTRACK_PLUGINS__SAGEMAKER__EXECUTION_ROLE_ARN)"
)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


class SageMakerProvider(DeployProvider[SageMakerDeploymentConfig]):
    """Deploys registered models to AWS SageMaker endpoints (real-time instances or serverless)."""

    name = "sagemaker"
    Settings = SageMakerSettings
    DeploymentConfig = SageMakerDeploymentConfig
    #: endpoints take 5-15 minutes to come up; a deploy's own ``wait_timeout`` replaces this
    default_timeout_s = 1800.0
    poll_interval_s = 15.0

    def __init__(self, settings: SageMakerSettings | None = None) -> None:
        super().__init__(settings)
        self.poll_interval_s = self._settings.poll_interval_s
        self._sessions: dict[str | None, AwsSession] = {}

    @property
    def _settings(self) -> SageMakerSettings:
        return cast(SageMakerSettings, self.settings)

    def _aws(self, region: str | None = None) -> AwsSession:
        if region not in self._sessions:
            self._sessions[region] = AwsSession(self._settings, region)
        return self._sessions[region]

    def check_credentials(self) -> None:
        self._aws().check_credentials()

    # -- plan -------------------------------------------------------------------------------

    def plan(
        self, model: ModelRef, name: str, config: SageMakerDeploymentConfig, *, replaces: Deployment | None = None
    ) -> DeployPlan[SageMakerDeploymentConfig]:
        """What would be created. With credentials it makes read-only AWS calls (STS for the account,
        DescribeEndpoint and ECR DescribeImages to tell a create from an update and a build); without
        them it still answers, with what only AWS can say marked as looked up at deploy time."""
        settings = self._settings
        role = config.execution_role_arn or settings.execution_role_arn
        if role is None:
            raise ConfigError("SageMaker needs execution_role_arn (the IAM role it runs the model as)", hint=ROLE_HINT)
        aws = self._aws(config.region)
        try:
            aws.check_credentials()  # local: rejected credentials still fail below, as they should
        except CredentialsMissingError as exc:  # deploy checked them first: only a plan gets here
            return self._offline_plan(model, name, config, role, replaces, why=exc.message)
        region = aws.require_region()  # credentials but no region: say so before anything is recorded
        account = aws.account_id()
        if replaces is not None and replaces.details.get("region") not in (None, region):
            # the core marks the replaced record deleted: its endpoint would run on, billed and forgotten
            raise DeploymentError(
                f"{replaces.id} runs in {replaces.details['region']}; deploying it to {region} would leave "
                "that endpoint running",
                hint=f"delete it first (`mltrack deployments delete {replaces.id}`) or deploy under another name",
            )
        image = config.image_uri or settings.image_uri
        build_image = False
        if image is None:
            tag = image_tag(model)
            image = ecr_image_uri(account, region, settings.ecr_repository, tag)
            build_image = not ecr_image_exists(aws, settings.ecr_repository, tag)
            if build_image:
                Docker(settings.docker).require()  # before anything is created, not half-way
        existing = self._describe(aws, name)
        if existing is not None:
            owner = self._tags(aws, existing["EndpointArn"]).get(TAG_DEPLOYMENT)
            if owner != name:
                raise DeploymentError(
                    f"a SageMaker endpoint named {name!r} already exists in {region} and was not created by "
                    "MLTrack for this deployment",
                    hint="deploy under another name (name=...) or delete that endpoint",
                )
        return self._plan(
            model,
            name,
            config,
            role,
            replaces,
            region=region,
            account=account,
            image=image,
            build_image=build_image,
            current_config=existing["EndpointConfigName"] if existing is not None else None,
        )

    def _offline_plan(
        self,
        model: ModelRef,
        name: str,
        config: SageMakerDeploymentConfig,
        role: str,
        replaces: Deployment | None,
        *,
        why: str,
    ) -> DeployPlan[SageMakerDeploymentConfig]:
        """The plan without AWS: placeholders for the account (and region), no create/update answer."""
        region = self._aws(config.region).region or "<region>"
        account = role.split(":")[4]  # the role's account is the one that will run the endpoint
        image = config.image_uri or self._settings.image_uri
        plan = self._plan(
            model,
            name,
            config,
            role,
            replaces,
            region=region,
            account=account,
            image=image or ecr_image_uri(account, region, self._settings.ecr_repository, image_tag(model)),
            build_image=None if image is None else False,
            current_config=None,
        )
        plan.actions.insert(
            0, f"(planned without AWS: {why}; whether the image and the endpoint exist is found out then)"
        )
        plan.resources["offline"] = True
        return plan

    def _plan(
        self,
        model: ModelRef,
        name: str,
        config: SageMakerDeploymentConfig,
        role: str,
        replaces: Deployment | None,
        *,
        region: str,
        account: str,
        image: str,
        build_image: bool | None,
        current_config: str | None,
    ) -> DeployPlan[SageMakerDeploymentConfig]:
        settings = self._settings
        bucket = config.bucket or settings.bucket
        key = model_data_key(settings.s3_prefix, model)
        resource = resource_name(name, model.version)
        if config.serverless is not None:
            capacity = (
                f"serverless, {config.serverless.memory_size_mb} MB, "
                f"up to {config.serverless.max_concurrency} concurrent invocations"
            )
        else:
            capacity = f"{config.instance_count} x {config.instance_type}"
        actions = []
        if build_image:
            actions.append(f"build the serving image with Docker and push it to {image}")
        elif build_image is None:
            actions.append(f"serve with the image {image} (built with Docker and pushed first if it is not in ECR)")
        else:
            actions.append(f"serve with the image {image}")
        actions += [
            f"package {model.uri} as model.tar.gz",
            f"upload it to s3://{bucket or default_bucket(region, account)}/{key}"
            + ("" if bucket else " (the bucket is created if missing)"),
            f"create the SageMaker model {resource} (execution role {role})",
            f"create the endpoint config {resource}: {capacity}, variant {config.variant_name}",
        ]
        if current_config is not None:
            actions += [
                f"update the endpoint {name} to {resource} (its current config {current_config} "
                "serves until the new one is in service)",
                f"wait up to {config.wait_timeout:.0f} s for InService, then delete the old model and config",
            ]
        else:
            actions += [f"create the endpoint {name}", f"wait up to {config.wait_timeout:.0f} s for InService"]
        resources: dict[str, Any] = {
            "region": region,
            "account": account,
            "endpoint": name,
            "endpoint_config": resource,
            "model": resource,
            "model_data": f"s3://{bucket or default_bucket(region, account)}/{key}",
            "bucket": bucket or default_bucket(region, account),
            "create_bucket": bucket is None,
            "image": image,
            "build_image": build_image,
            "execution_role_arn": role,
            "update": current_config is not None,
        }
        if config.serverless is not None:
            resources["serverless"] = config.serverless.model_dump()
        else:
            resources.update(instance_type=config.instance_type, instance_count=config.instance_count)
        return DeployPlan(
            provider=self.name,
            name=name,
            model=model,
            config=config,
            actions=actions,
            resources=resources,
            url=invocation_url(region, name),
            replaces=replaces,
            wait_timeout_s=config.wait_timeout,
        )

    # -- deploy -----------------------------------------------------------------------------

    def deploy(self, plan: DeployPlan[SageMakerDeploymentConfig], progress: Progress) -> DeploymentStatus:
        config = plan.config
        found = plan.resources
        if found.get("offline"):  # the core checks credentials before planning a deploy: not reached there
            self._aws(config.region).check_credentials()
            raise DeploymentError("this plan was made without AWS credentials; plan again now that they are set")
        aws = self._aws(found["region"])
        if found["build_image"]:
            build_and_push(
                aws,
                Docker(self._settings.docker),
                plan.model,
                repository=self._settings.ecr_repository,
                tag=image_tag(plan.model),
                base_image=self._settings.base_image,
                progress=progress,
            )
        tags = aws_tags(plan.name, plan.model, config.tags)
        resource = found["model"]
        created: list[tuple[str, str]] = []
        superseded: list[dict[str, str]] = []
        try:
            model_data = self._upload(aws, plan, progress)
            progress.step(f"creating the SageMaker model {resource}")
            aws.call(
                "sagemaker",
                "create_model",
                doing=f"creating the SageMaker model {resource}",
                ModelName=resource,
                ExecutionRoleArn=found["execution_role_arn"],
                PrimaryContainer={"Image": found["image"], "ModelDataUrl": model_data, "Mode": "SingleModel"},
                Tags=tags,
            )
            created.append(("model", resource))
            progress.step(f"creating the endpoint config {resource}")
            aws.call(
                "sagemaker",
                "create_endpoint_config",
                doing=f"creating the endpoint config {resource}",
                EndpointConfigName=resource,
                ProductionVariants=[self._variant(config, resource)],
                Tags=tags,
            )
            created.append(("endpoint_config", resource))
            existing = self._describe(aws, plan.name) if found["update"] else None
            if existing is not None:
                superseded = self._resources_of(aws, existing["EndpointConfigName"])
                progress.step(f"updating the endpoint {plan.name} to {resource}")
                aws.call(
                    "sagemaker",
                    "update_endpoint",
                    doing=f"updating the endpoint {plan.name}",
                    EndpointName=plan.name,
                    EndpointConfigName=resource,
                )
                aws.call(
                    "sagemaker",
                    "add_tags",
                    doing=f"tagging the endpoint {plan.name}",
                    ResourceArn=existing["EndpointArn"],
                    Tags=[t for t in tags if t["Key"] == TAG_VERSION],
                )
                arn = existing["EndpointArn"]
            else:
                progress.step(f"creating the endpoint {plan.name}")
                arn = aws.call(
                    "sagemaker",
                    "create_endpoint",
                    doing=f"creating the endpoint {plan.name}",
                    EndpointName=plan.name,
                    EndpointConfigName=resource,
                    Tags=tags,
                )["EndpointArn"]
        except BaseException:
            self._delete_resources(aws, created, progress, best_effort=True)
            raise
        details = {
            "region": found["region"],
            "endpoint_name": plan.name,
            "endpoint_arn": arn,
            "endpoint_config": resource,
            "model": resource,
            "model_data": model_data,
            "image": found["image"],
            "variant": config.variant_name,
            "superseded": superseded,
        }
        verb = "updating" if superseded or found["update"] else "creating"
        return DeploymentStatus(DeploymentState.PENDING, plan.url, f"{verb} the endpoint", details)

    def _variant(self, config: SageMakerDeploymentConfig, model_name: str) -> dict[str, Any]:
        variant: dict[str, Any] = {"VariantName": config.variant_name, "ModelName": model_name}
        if config.serverless is not None:
            serverless: dict[str, Any] = {
                "MemorySizeInMB": config.serverless.memory_size_mb,
                "MaxConcurrency": config.serverless.max_concurrency,
            }
            if config.serverless.provisioned_concurrency is not None:
                serverless["ProvisionedConcurrency"] = config.serverless.provisioned_concurrency
            variant["ServerlessConfig"] = serverless
        else:
            variant.update(
                InstanceType=config.instance_type,
                InitialInstanceCount=config.instance_count,
                InitialVariantWeight=1.0,
            )
        return variant

    def _upload(self, aws: AwsSession, plan: DeployPlan[SageMakerDeploymentConfig], progress: Progress) -> str:
        """Package the model and put it in S3 (skipped when the same bytes are there); returns the S3 URI."""
        found = plan.resources
        bucket = found["bucket"]
        key = found["model_data"].split("/", 3)[3]
        progress.step(f"downloading {plan.model.uri}")
        model_dir = plan.model.download()
        with tempfile.TemporaryDirectory(prefix="mltrack-sagemaker-") as folder:
            progress.step(f"packaging {plan.model.uri} as model.tar.gz")
            packaged = package_model(model_dir, Path(folder))
            if found["create_bucket"]:
                self._ensure_bucket(aws, bucket)
            head = aws.call(
                "s3", "head_object", doing=f"checking s3://{bucket}/{key}", missing_ok=True, Bucket=bucket, Key=key
            )
            if head is not None and head.get("Metadata", {}).get("sha256") == packaged.sha256:
                progress.step(f"s3://{bucket}/{key} already holds this model.tar.gz")
                return str(found["model_data"])
            progress.step(f"uploading model.tar.gz ({_size(packaged.size)}) to s3://{bucket}/{key}")
            sent = [0]
            lock = threading.Lock()

            def advance(chunk: int) -> None:  # called from boto3's transfer threads
                with lock:
                    sent[0] += chunk
                    progress.advance(sent[0], packaged.size)

            from boto3.exceptions import S3UploadFailedError

            try:
                with aws_errors(f"uploading model.tar.gz to s3://{bucket}/{key}"):
                    aws.client("s3").upload_file(
                        str(packaged.path),
                        bucket,
                        key,
                        ExtraArgs={"Metadata": {"sha256": packaged.sha256}, "ContentType": "application/gzip"},
                        Callback=advance,
                    )
            except S3UploadFailedError as exc:
                raise DeploymentError(
                    f"uploading model.tar.gz to s3://{bucket}/{key} failed: {exc}",
                    hint="check that the bucket exists and that you may write to it",
                ) from None
        return str(found["model_data"])

    def _ensure_bucket(self, aws: AwsSession, bucket: str) -> None:
        exists = aws.call("s3", "head_bucket", doing=f"looking up the bucket {bucket}", missing_ok=True, Bucket=bucket)
        if exists is not None:
            return
        region = aws.require_region()
        params: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":  # us-east-1 refuses a LocationConstraint naming itself
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        aws.call("s3", "create_bucket", doing=f"creating the bucket {bucket}", **params)

    # -- status -----------------------------------------------------------------------------

    def _describe(self, aws: AwsSession, endpoint: str) -> dict[str, Any] | None:
        found = aws.call(
            "sagemaker",
            "describe_endpoint",
            doing=f"describing the endpoint {endpoint}",
            missing_ok=True,
            EndpointName=endpoint,
        )
        return cast("dict[str, Any] | None", found)

    def _tags(self, aws: AwsSession, arn: str) -> dict[str, str]:
        found = aws.call("sagemaker", "list_tags", doing=f"reading the tags of {arn}", ResourceArn=arn)
        return {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}

    def _resources_of(self, aws: AwsSession, endpoint_config: str) -> list[dict[str, str]]:
        """The endpoint config and the models it serves (what an update supersedes)."""
        found = aws.call(
            "sagemaker",
            "describe_endpoint_config",
            doing=f"describing the endpoint config {endpoint_config}",
            missing_ok=True,
            EndpointConfigName=endpoint_config,
        )
        models = [v["ModelName"] for v in (found or {}).get("ProductionVariants", [])]
        return [{"endpoint_config": endpoint_config, "model": m} for m in models] or [
            {"endpoint_config": endpoint_config, "model": ""}
        ]

    def status(self, deployment: Deployment) -> DeploymentStatus:
        details = deployment.details
        endpoint = details.get("endpoint_name")
        if not endpoint:  # the deploy failed before the endpoint was asked for
            return DeploymentStatus(deployment.state, deployment.url, deployment.message)
        aws = self._aws(details.get("region"))
        found = self._describe(aws, endpoint)
        if found is None:
            if deployment.state is DeploymentState.DELETED:
                return DeploymentStatus(DeploymentState.DELETED, deployment.url, deployment.message)
            return DeploymentStatus(
                DeploymentState.FAILED,
                deployment.url,
                f"the endpoint {endpoint} does not exist (deleted outside MLTrack?)",
            )
        state = str(found["EndpointStatus"])
        reason = str(found.get("FailureReason") or "").strip()
        serving = found.get("EndpointConfigName")
        if state == "InService":
            if serving != details.get("endpoint_config"):
                why = f": {reason}" if reason else ""
                return DeploymentStatus(
                    DeploymentState.FAILED,
                    deployment.url,
                    f"the endpoint {endpoint} serves the config {serving}, not {details.get('endpoint_config')}{why}",
                )
            cleaned: dict[str, Any] = {}
            if details.get("superseded"):
                old = [(k, item[k]) for item in details["superseded"] for k in ("endpoint_config", "model") if item[k]]
                self._delete_resources(aws, old, None, best_effort=True)
                cleaned["superseded"] = []
            return DeploymentStatus(DeploymentState.READY, deployment.url, "in service", cleaned)
        if state in PENDING_STATES:
            return DeploymentStatus(DeploymentState.PENDING, deployment.url, f"the endpoint is {state}")
        if state == "Deleting":
            return DeploymentStatus(DeploymentState.DELETED, deployment.url, "the endpoint is being deleted")
        return DeploymentStatus(
            DeploymentState.FAILED,
            deployment.url,
            f"the endpoint {endpoint} is {state}: {reason or 'SageMaker gave no reason'}",
        )

    # -- requests and logs ------------------------------------------------------------------

    def predict(self, deployment: Deployment, payload: dict[str, Any]) -> Any:
        from botocore.exceptions import ClientError

        endpoint = deployment.details.get("endpoint_name")
        if not endpoint:
            raise DeploymentError(f"deployment {deployment.id} has no endpoint (state {deployment.state})")
        client = self._aws(deployment.details.get("region")).client("sagemaker-runtime")
        with aws_errors(f"invoking the endpoint {endpoint}"):
            try:
                response = client.invoke_endpoint(
                    EndpointName=endpoint,
                    Body=json.dumps(payload).encode(),
                    ContentType="application/json",
                    Accept="application/json",
                )
            except ClientError as exc:
                if error_code(exc) != "ModelError":
                    raise
                original = exc.response.get("OriginalStatusCode")
                message = str(exc.response.get("OriginalMessage") or error_message(exc))
                if isinstance(original, int) and 400 <= original < 500:
                    raise InvalidInputError("data", payload, f"was refused by {deployment.id}: {message}") from None
                raise DeploymentError(
                    f"the model of {deployment.id} failed ({original or 'no status'}): {message}",
                    hint=f"see `mltrack deployments logs {deployment.id}`",
                ) from None
            body = response["Body"].read()
        try:
            answer = json.loads(body)
        except ValueError:
            raise DeploymentError(f"{deployment.id} answered with something other than JSON: {body[:200]!r}") from None
        return answer.get("predictions", answer) if isinstance(answer, dict) else answer

    def logs(self, deployment: Deployment, *, tail: int = 100) -> list[str]:
        """The last ``tail`` lines of ``/aws/sagemaker/Endpoints/<endpoint>``, from its most recent streams."""
        endpoint = deployment.details.get("endpoint_name")
        if not endpoint or tail <= 0:
            return []
        aws = self._aws(deployment.details.get("region"))
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        streams = aws.call(
            "logs",
            "describe_log_streams",
            doing=f"listing the log streams of {group}",
            missing_ok=True,
            logGroupName=group,
            orderBy="LastEventTime",
            descending=True,
            limit=10,
        )
        events: list[tuple[int, str, str]] = []
        for stream in (streams or {}).get("logStreams", []):
            name = stream["logStreamName"]
            found = aws.call(
                "logs",
                "get_log_events",
                doing=f"reading {group}/{name}",
                missing_ok=True,
                logGroupName=group,
                logStreamName=name,
                limit=tail,
                startFromHead=False,
            )
            events += [(e["timestamp"], name, e["message"]) for e in (found or {}).get("events", [])]
        events.sort()
        return [
            f"{datetime.fromtimestamp(ts / 1000, timezone.utc).isoformat(timespec='seconds')} [{stream}] "
            f"{message.rstrip()}"
            for ts, stream, message in events[-tail:]
        ]

    def list(self) -> list[DeploymentStatus]:
        """MLTrack's endpoints in the default region (settings, else the AWS environment's)."""
        aws = self._aws()
        found: list[DeploymentStatus] = []
        with aws_errors("listing SageMaker endpoints"):
            pages = aws.client("sagemaker").get_paginator("list_endpoints").paginate()
            endpoints = [e for page in pages for e in page.get("Endpoints", [])]
        region = aws.require_region()
        for endpoint in endpoints:
            tags = self._tags(aws, endpoint["EndpointArn"])
            if TAG_DEPLOYMENT not in tags:
                continue
            state = str(endpoint["EndpointStatus"])
            if state == "InService":
                mapped = DeploymentState.READY
            elif state in PENDING_STATES:
                mapped = DeploymentState.PENDING
            elif state == "Deleting":
                mapped = DeploymentState.DELETED
            else:
                mapped = DeploymentState.FAILED
            found.append(
                DeploymentStatus(
                    mapped,
                    invocation_url(region, endpoint["EndpointName"]),
                    state,
                    details={
                        "name": tags[TAG_DEPLOYMENT],
                        "endpoint_name": endpoint["EndpointName"],
                        "endpoint_arn": endpoint["EndpointArn"],
                        "region": region,
                        "model_version": tags.get(TAG_VERSION),
                    },
                )
            )
        return found

    # -- delete -----------------------------------------------------------------------------

    def delete(self, deployment: Deployment, progress: Progress) -> DeploymentStatus:
        details = deployment.details
        endpoint = details.get("endpoint_name")
        if not endpoint:
            return DeploymentStatus(DeploymentState.DELETED, deployment.url, "nothing was created")
        aws = self._aws(details.get("region"))
        progress.step(f"deleting the endpoint {endpoint}")
        aws.call(
            "sagemaker",
            "delete_endpoint",
            doing=f"deleting the endpoint {endpoint}",
            missing_ok=True,
            EndpointName=endpoint,
        )
        owned: list[tuple[str, str]] = [
            ("endpoint_config", details.get("endpoint_config", "")),
            ("model", details.get("model", "")),
        ]
        for item in details.get("superseded") or []:
            owned += [("endpoint_config", item.get("endpoint_config", "")), ("model", item.get("model", ""))]
        self._delete_resources(aws, [(kind, name) for kind, name in owned if name], progress, best_effort=False)
        return DeploymentStatus(
            DeploymentState.DELETED, deployment.url, f"deleted the endpoint {endpoint}, its config and model"
        )

    def _delete_resources(
        self, aws: AwsSession, resources: Sequence[tuple[str, str]], progress: Progress | None, *, best_effort: bool
    ) -> None:
        """Delete endpoint configs before models (reverse creation order); missing ones are fine."""
        order: list[tuple[str, str]] = sorted(dict.fromkeys(resources), key=lambda item: item[0] != "endpoint_config")
        for kind, name in order:
            if progress is not None:
                progress.step(f"deleting the {kind.replace('_', ' ')} {name}")
            operation, param = (
                ("delete_endpoint_config", "EndpointConfigName")
                if kind == "endpoint_config"
                else ("delete_model", "ModelName")
            )
            try:
                aws.call(
                    "sagemaker",
                    operation,
                    doing=f"deleting the {kind.replace('_', ' ')} {name}",
                    missing_ok=True,
                    **{param: name},
                )
            except DeploymentError:
                if not best_effort:
                    raise
