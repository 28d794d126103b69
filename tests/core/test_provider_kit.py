"""The provider kit: a team's provider of the "a process I start" kind, written from the docs.

The provider is the example of docs/plugin-authors.md ("A provider that starts a process"), taken
from the page as it is: it must stay short (the kit's promise: at most 40 lines) and pass the same
conformance suite as the built-in providers.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mltrack.deployment.providers import DeployProvider
from mltrack.errors import DeploymentError
from mltrack.testing.providers import ProviderConformance

PLUGIN_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-authors.md"
MAX_LINES = 40


def example_source() -> str:
    """The Python block of the guide that defines the example provider."""
    blocks = re.findall(r"^```python\n(.*?)^```", PLUGIN_GUIDE.read_text(), flags=re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if "class NiceProvider(ProcessProvider[" in block]
    assert len(found) == 1, "docs/plugin-authors.md should hold one ProcessProvider example"
    return str(found[0])


def example_module() -> types.ModuleType:
    module = types.ModuleType("mltrack_kit_example")
    sys.modules[module.__name__] = module  # pydantic resolves the models' annotations through it
    exec(compile(example_source(), str(PLUGIN_GUIDE), "exec"), module.__dict__)
    return module


EXAMPLE = example_module()


def test_the_documented_provider_is_at_most_40_lines() -> None:
    lines = example_source().splitlines()  # blank lines, imports and the hook implementation included
    assert len(lines) <= MAX_LINES, f"the example provider has {len(lines)} lines"


class TestTheDocumentedProvider(ProviderConformance):
    def provider_class(self) -> type[DeployProvider]:
        return EXAMPLE.NiceProvider  # type: ignore[no-any-return]

    def valid_config(self) -> dict[str, Any]:
        return {"niceness": 5}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [({"niceness": 40}, "niceness"), ({"port": 80}, "port")]

    def deploy_timeout_s(self) -> float:
        return 120.0

    def test_its_server_runs_at_the_configured_niceness(self) -> None:
        deployment = self.deploy(1)
        stat = Path(f"/proc/{deployment.details['pid']}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[16]) == 5  # field 19 of proc(5): the nice value


def test_a_command_that_cannot_start_fails_the_deploy_naming_it(sqlite_uri: str) -> None:
    import mltrack
    from mltrack.deployment.deployments import resolve_model_ref
    from mltrack.deployment.process_provider import ProcessDeploymentConfig, ProcessProvider

    class Missing(ProcessProvider[ProcessDeploymentConfig]):
        name = "missing"

        def command(self, config: ProcessDeploymentConfig, model_dir: Path, port: int) -> list[str]:
            return ["/nonexistent/launcher", str(model_dir)]

    mltrack.register_model(lambda rows: rows, "echo")
    provider = Missing()
    plan = provider.plan(resolve_model_ref("echo", 1), "echo", ProcessDeploymentConfig.model_validate({}))
    with pytest.raises(DeploymentError, match="could not start '/nonexistent/launcher'") as caught:
        provider.deploy(plan, _NoProgress())
    assert "missing" in str(caught.value.hint)
    assert provider.list() == []  # nothing left behind in its state folder


class _NoProgress:
    def step(self, message: str) -> None:
        pass

    def advance(self, done: float, total: float | None = None) -> None:
        pass
