"""The serving image: a generated Dockerfile, its build context, and building and pushing it to ECR.

The image holds Python, the model's requirements and MLTrack, all installed at build time (a
container never installs anything when it starts), and runs ``mltrack_sagemaker.container`` as an
exec-form ENTRYPOINT. It does not hold the model: SageMaker unpacks the endpoint's ``model.tar.gz``
into ``/opt/ml/model``, so one image serves every version whose requirements are the same.

MLTrack is not on PyPI, so its own distributions travel in the build context as wheels: built from
the checkout for an editable install, copied when installed from a wheel, and pinned by version
only when installed from an index that the image can reach too.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from mltrack.errors import DeploymentError
from mltrack_sagemaker import __version__

if TYPE_CHECKING:
    from mltrack.providers import ModelRef, Progress
    from mltrack_sagemaker.aws import AwsSession

VENV = "/opt/mltrack/venv"
#: the distributions every image needs; a flavour's plugin is added per model
BASE_DISTRIBUTIONS = ("mltrack-core", "mltrack-sagemaker")
BUILD_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class BuildContext:
    path: Path
    dockerfile: str
    requirements: list[str]


def model_python_version(model_dir: Path) -> str:
    """``major.minor`` of the Python the model was saved with (``python_env.yaml``), else this one's."""
    env_file = model_dir / "python_env.yaml"
    if env_file.is_file():
        match = re.search(r"^python:\s*['\"]?(\d+)\.(\d+)", env_file.read_text(), re.MULTILINE)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def model_requirements(model_dir: Path) -> list[str]:
    """The pip requirements MLflow wrote with the model (comments and blank lines dropped)."""
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def default_base_image(model_dir: Path) -> str:
    return f"python:{model_python_version(model_dir)}-slim"


def flavour_distribution(flavour: str | None) -> str | None:
    """The installed distribution whose plugin provides ``flavour`` (None for the core's own)."""
    if not flavour:
        return None
    from mltrack.plugins import get_plugin_manager

    manager = get_plugin_manager()
    contribution = manager.registry("flavours").get(flavour)
    if contribution is None:
        return None
    info = manager.info(contribution.plugin)
    return info.distribution if info is not None and info.distribution not in (None, "mltrack-core") else None


def _source_of(distribution: str) -> tuple[str, Path | None]:
    """How ``distribution`` is installed: ("dir", path) / ("wheel", path) / ("index", None)."""
    try:
        text = metadata.distribution(distribution).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        raise DeploymentError(
            f"{distribution} is not installed here, so it cannot be put into the image",
            hint=f"install it next to mltrack-sagemaker (pip install {distribution})",
        ) from None
    if not text:
        return "index", None
    url = json.loads(text).get("url", "")
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return "index", None
    path = Path(unquote(parsed.path))
    return ("wheel" if path.suffix == ".whl" else "dir"), path


def _wheel_of(distribution: str, wheels: Path) -> str:
    """Put ``distribution`` into ``wheels`` (or decide to pin it) and return its requirement line."""
    kind, path = _source_of(distribution)
    version = metadata.version(distribution)
    if kind == "index" or path is None:
        return f"{distribution}=={version}"
    if kind == "wheel":
        shutil.copy2(path, wheels / path.name)
        return f"./wheels/{path.name}"
    before = set(wheels.glob("*.whl"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    built = sorted(set(wheels.glob("*.whl")) - before)
    if result.returncode != 0 or not built:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DeploymentError(
            f"could not build a wheel of {distribution} from {path}: {last}",
            hint="pip needs hatchling to build MLTrack's packages: pip install hatchling",
        )
    return f"./wheels/{built[0].name}"


def render_dockerfile(*, base_image: str, model: str) -> str:
    """The Dockerfile of the serving image (``requirements.txt`` and ``wheels/`` beside it)."""
    return f"""\
# Generated by mltrack-sagemaker {__version__} for {model}.
# SageMaker's bring-your-own-container contract: `docker run <image> serve` answers GET /ping and
# POST /invocations on port 8080 for the model unpacked into /opt/ml/model (not baked in here).
FROM {base_image}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    VIRTUAL_ENV={VENV} PATH={VENV}/bin:$PATH MLTRACK_DATA_DIR=/tmp/mltrack
WORKDIR /opt/mltrack
COPY requirements.txt /opt/mltrack/requirements.txt
COPY wheels/ /opt/mltrack/wheels/
# Everything is installed now, at build time: a container downloads nothing when it starts.
RUN python3 -m venv {VENV} && {VENV}/bin/python -m pip install -r /opt/mltrack/requirements.txt
EXPOSE 8080
# exec form: the Python process is PID 1 and receives SageMaker's SIGTERM itself
ENTRYPOINT ["{VENV}/bin/python", "-m", "mltrack_sagemaker.container"]
"""


def write_build_context(
    model_dir: Path, dest: Path, *, model: str, flavour: str | None = None, base_image: str | None = None
) -> BuildContext:
    """Write ``Dockerfile``, ``requirements.txt`` and ``wheels/`` for ``model_dir``'s image into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = dest / "wheels"
    wheels.mkdir(exist_ok=True)
    (wheels / ".keep").write_text("")  # COPY of an empty folder still needs something in it
    distributions = list(BASE_DISTRIBUTIONS)
    extra = flavour_distribution(flavour)
    if extra is not None and extra not in distributions:
        distributions.append(extra)
    ours = [_wheel_of(name, wheels) for name in distributions]
    # the model's own pins first: they are what it was trained and tested with
    requirements = [*model_requirements(model_dir), *ours]
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")
    dockerfile = render_dockerfile(base_image=base_image or default_base_image(model_dir), model=model)
    (dest / "Dockerfile").write_text(dockerfile)
    return BuildContext(path=dest, dockerfile=dockerfile, requirements=requirements)


def image_tag(model: ModelRef) -> str:
    """``<model>-v<version>``: Docker tags allow 128 characters of ``[A-Za-z0-9_.-]``."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", model.name.lower()).strip("-.") or "model"
    return f"{slug[:100]}-v{model.version}"


def ecr_image_uri(account: str, region: str, repository: str, tag: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}"


# -- Docker -------------------------------------------------------------------------------------


class Docker:
    """The ``docker`` command line (build, login, push)."""

    def __init__(self, command: str = "docker") -> None:
        self.command = command

    def unavailable_reason(self) -> str | None:
        """None when images can be built here, else why not."""
        if shutil.which(self.command) is None:
            return f"`{self.command}` is not installed"
        try:
            result = subprocess.run(
                [self.command, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{self.command} version` failed: {exc}"
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            return f"the Docker daemon does not answer ({lines[-1] if lines else 'no output'})"
        return None

    def require(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise DeploymentError(
                f"cannot build the SageMaker serving image here: {reason}",
                hint="run `mltrack sagemaker build-image` where Docker runs, then deploy with "
                "config image_uri=... (or `image_uri` in [tool.mltrack.plugins.sagemaker])",
            )

    def _run(self, args: list[str], *, doing: str, stdin: str | None = None, timeout: float = 600) -> str:
        result = subprocess.run([self.command, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line.strip()]
            raise DeploymentError(f"{doing} failed: {lines[-1] if lines else f'exit code {result.returncode}'}")
        return result.stdout

    def build(self, context: Path, tag: str, *, network: str | None = None) -> None:
        args = ["build", "--tag", tag]
        if network:
            args += ["--network", network]
        self._run([*args, str(context)], doing=f"docker build of {tag}", timeout=BUILD_TIMEOUT_S)

    def tag(self, source: str, target: str) -> None:
        self._run(["tag", source, target], doing=f"docker tag {target}")

    def login(self, registry: str, username: str, password: str) -> None:
        self._run(
            ["login", "--username", username, "--password-stdin", registry],
            doing=f"docker login to {registry}",
            stdin=password,
        )

    def push(self, image: str) -> None:
        self._run(["push", image], doing=f"docker push {image}", timeout=BUILD_TIMEOUT_S)


def ecr_image_exists(aws: AwsSession, repository: str, tag: str) -> bool:
    found = aws.call(
        "ecr",
        "describe_images",
        doing=f"looking up {repository}:{tag} in ECR",
        missing_ok=True,
        repositoryName=repository,
        imageIds=[{"imageTag": tag}],
    )
    return bool(found and found.get("imageDetails"))


def ensure_repository(aws: AwsSession, repository: str) -> None:
    found = aws.call(
        "ecr",
        "describe_repositories",
        doing="looking up the ECR repository",
        missing_ok=True,
        repositoryNames=[repository],
    )
    if not found:
        aws.call(
            "ecr",
            "create_repository",
            doing=f"creating the ECR repository {repository}",
            repositoryName=repository,
            imageScanningConfiguration={"scanOnPush": True},
            tags=[{"Key": "mltrack:managed", "Value": "true"}],
        )


def build_and_push(
    aws: AwsSession,
    docker: Docker,
    model: ModelRef,
    *,
    repository: str,
    tag: str | None = None,
    base_image: str | None = None,
    push: bool = True,
    network: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Build ``model``'s serving image and (with ``push``) push it to ECR; returns the image URI
    (the local tag when not pushed)."""
    docker.require()
    tag = tag or image_tag(model)
    local = f"mltrack-sagemaker/{repository}:{tag}"
    model_dir = model.download()
    with tempfile.TemporaryDirectory(prefix="mltrack-sagemaker-image-") as folder:
        if progress is not None:
            progress.step(f"writing the build context of {model.uri}")
        write_build_context(model_dir, Path(folder), model=model.uri, flavour=model.flavour, base_image=base_image)
        if progress is not None:
            progress.step(f"docker build {local}")
        docker.build(Path(folder), local, network=network)
    if not push:
        return local
    region = aws.require_region()
    remote = ecr_image_uri(aws.account_id(), region, repository, tag)
    ensure_repository(aws, repository)
    token = aws.call("ecr", "get_authorization_token", doing="getting an ECR login")["authorizationData"][0]
    username, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    if progress is not None:
        progress.step(f"docker push {remote}")
    docker.login(token["proxyEndpoint"], username, password)
    docker.tag(local, remote)
    docker.push(remote)
    return remote
