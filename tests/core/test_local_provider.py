"""The ``local`` provider: real ``mltrack serve`` processes on 127.0.0.1, driven end to end."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import mltrack
from mltrack.deployment.deployments import deploy, get_deployment, list_deployments
from mltrack.deployment.local_provider import LocalProvider
from mltrack.deployment.providers import DeploymentState, DeployProvider
from mltrack.errors import DeploymentError
from mltrack.testing.providers import ProviderConformance


class TestLocalProvider(ProviderConformance):
    def provider_class(self) -> type[DeployProvider]:
        return LocalProvider

    def valid_config(self) -> dict[str, Any]:
        return {}

    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        return [({"port": 80}, "port"), ({"host": "0.0.0.0"}, "host"), ({"workers": 0}, "workers")]

    def deploy_timeout_s(self) -> float:
        return 120.0


def sum_model() -> Any:
    def predict(rows: Any) -> Any:
        return (rows["a"] + rows["b"]).to_numpy()

    return predict


@pytest.fixture
def churn(sqlite_uri: str) -> str:
    import pandas as pd

    with mltrack.start_run():
        info = mltrack.log_model(sum_model(), "model", input_example=pd.DataFrame({"a": [1.0], "b": [2.0]}))
    mltrack.register_model(info.model_uri, "churn")
    return "churn"


def stop_all() -> None:
    for deployment in list_deployments():
        if deployment.state is not DeploymentState.DELETED:
            deployment.delete()


@pytest.fixture(autouse=True)
def _stop_servers() -> Any:
    yield
    try:
        stop_all()
    except Exception:  # the store of a failed test may be gone; its servers are killed below
        pass


def test_a_deployed_model_answers_over_http_and_is_recorded(churn: str) -> None:
    import urllib.request

    deployment = deploy(churn)
    assert deployment.state is DeploymentState.READY
    assert deployment.url is not None and deployment.url.startswith("http://127.0.0.1:")
    body = json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}).encode()
    request = urllib.request.Request(
        f"{deployment.url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"predictions": [3.0, 7.0]}
    details = deployment.details
    assert details["port"] == int(deployment.url.rsplit(":", 1)[1]) and Path(details["log_file"]).is_file()
    assert [s.details["name"] for s in LocalProvider().list()] == ["churn"]


def test_a_server_whose_process_died_shows_as_failed(churn: str) -> None:
    deployment = deploy(churn)
    os.killpg(deployment.details["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    refreshed = deployment.refresh()
    while time.monotonic() < deadline and "is gone" not in refreshed.message:
        time.sleep(0.1)  # the signal takes a moment to land; a dying server is "failed" at once after
        refreshed = refreshed.refresh()
    refreshed = get_deployment("local/churn")
    assert refreshed.state is DeploymentState.FAILED
    assert f"server process {deployment.details['pid']} is gone" in refreshed.message
    assert deployment.delete().state is DeploymentState.DELETED  # deleting a dead one still works


def test_a_taken_port_is_refused_and_nothing_keeps_running(churn: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DeploymentError, match=f"port {port} on 127.0.0.1 is already in use"):
            deploy(churn, config={"port": port})
    assert get_deployment("local/churn").state is DeploymentState.FAILED
    assert LocalProvider().list() == []


def test_a_model_the_server_cannot_load_fails_with_its_log_line_and_leaves_no_process(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a model whose class lives in a module only this process can import
    package = tmp_path / "only_here"
    package.mkdir()
    (package / "custom_model.py").write_text(
        textwrap.dedent(
            """
            class Doubler:
                def predict(self, rows):
                    return rows * 2
            """
        )
    )
    monkeypatch.syspath_prepend(str(package))
    import custom_model  # type: ignore[import-not-found]

    mltrack.register_model(custom_model.Doubler(), "needs-code")
    monkeypatch.delitem(sys.modules, "custom_model")
    with pytest.raises(DeploymentError, match="the server exited with code") as caught:
        deploy("needs-code", config={"startup_timeout_s": 60})
    assert "custom_model" in str(caught.value)  # the log's last line says what could not be imported
    assert get_deployment("local/needs-code").state is DeploymentState.FAILED
    assert LocalProvider().list() == []


def test_logs_show_the_server_output(churn: str) -> None:
    deployment = deploy(churn)
    deployment.predict({"a": [1.0], "b": [1.0]})
    lines = deployment.logs(tail=200)
    assert any("model 'churn' v1" in line and "listening on" in line for line in lines), lines


def test_predict_with_a_bad_input_names_the_problem(churn: str) -> None:
    deployment = deploy(churn)
    with pytest.raises(mltrack.InvalidInputError, match="refused by local/churn") as caught:
        deployment.predict({"a": [1.0]})  # column b is missing
    assert "b" in str(caught.value)
    assert deployment.predict({"a": [1.0], "b": [2.0]}) == [3.0]  # still serving


def test_the_cli_deploys_lists_predicts_and_deletes(churn: str) -> None:
    from conftest import run_cli

    deployed = run_cli("deploy", churn, "--json")
    assert deployed.returncode == 0, deployed.stderr
    record = json.loads(deployed.stdout)
    assert record["status"] == "ready" and record["model_version"] == 1
    listed = json.loads(run_cli("deployments", "list", "--json").stdout)
    assert [(d["id"], d["status"]) for d in listed] == [("local/churn", "ready")]
    predicted = run_cli("deployments", "predict", "local/churn", "--data", '{"a": [1, 2], "b": [3, 4]}')
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout) == [4.0, 6.0]
    assert run_cli("deployments", "status", "local/churn").returncode == 0
    assert "model 'churn' v1" in run_cli("deployments", "logs", "local/churn").stdout
    deleted = run_cli("deployments", "delete", "--all", "--provider", "local")
    assert deleted.returncode == 0, deleted.stderr
    status = run_cli("deployments", "status", "local/churn")
    assert status.returncode == 1 and "deleted" in status.stdout


def group_processes(pgid: int) -> set[int]:
    """The live (not zombie) processes of process group ``pgid``, as ``ps`` sees them."""
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=", "-o", "pgid=", "-o", "stat="], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for line in listing.splitlines():
        pid, group, state = line.split()[:3]
        if int(group) == pgid and not state.startswith("Z"):
            found.add(int(pid))
    return found


def answers(port: int) -> bool:
    """Whether anything accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_two_deploys_of_one_name_at_once_leave_one_server_and_delete_stops_it(churn: str) -> None:
    command = [str(Path(sys.executable).parent / "mltrack"), "deploy", churn, "--json", "--timeout", "90"]
    deploys = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=240) for process in deploys]
    assert [process.returncode for process in deploys] == [0, 0], [err[-2000:] for _, err in outputs]
    started = [json.loads(out)["details"] for out, _ in outputs]
    recorded = get_deployment("local/churn")
    # the deploy that came second replaced the first, as a redeploy does
    assert [s["pid"] for s in started if group_processes(s["pid"])] == [recorded.details["pid"]]
    assert [answers(s["port"]) for s in started].count(True) == 1
    assert recorded.delete().state is DeploymentState.DELETED
    assert [group_processes(s["pid"]) for s in started] == [set(), set()]
    assert not any(answers(s["port"]) for s in started)


def test_a_deploy_waits_for_the_lock_of_its_name_and_gives_up_with_a_clear_error(churn: str) -> None:
    lock_file = Path(os.environ["MLTRACK_DATA_DIR"]) / "deployments" / "local" / "churn.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(DeploymentError, match="another deploy or delete of local/churn"):
            deploy(churn, timeout=0.5)
        assert time.monotonic() - started < 10
    assert list_deployments() == [] and LocalProvider().list() == []  # nothing recorded, nothing started


def test_a_multi_worker_server_whose_supervisor_was_killed_still_serves_and_delete_stops_its_workers(
    churn: str,
) -> None:
    deployment = deploy(churn, config={"workers": 2, "startup_timeout_s": 60})
    pgid, port = deployment.details["pid"], deployment.details["port"]
    deadline = time.monotonic() + 30
    while len(group_processes(pgid) - {pgid}) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # ready means one worker answers; the other may still be loading
    assert len(group_processes(pgid) - {pgid}) >= 2
    os.kill(pgid, signal.SIGKILL)  # the supervisor alone
    os.waitpid(pgid, 0)  # it is this process's child: reap it
    assert answers(port)  # its workers still hold the socket and serve
    assert deployment.predict({"a": [1.0], "b": [2.0]}) == [3.0]
    refreshed = deployment.refresh()
    assert refreshed.state is DeploymentState.READY, refreshed.message
    assert f"supervisor (pid {pgid}) is gone" in refreshed.message
    assert deployment.delete().state is DeploymentState.DELETED
    assert group_processes(pgid) == set()
    assert not answers(port)


def test_a_status_read_before_a_redeploy_does_not_overwrite_the_redeploys_record(churn: str) -> None:
    first = deploy(churn)
    stale = get_deployment("local/churn")
    second = deploy(churn)  # replaces the first server
    assert stale.refresh().state is DeploymentState.FAILED  # what was read is gone...
    current = get_deployment("local/churn")
    assert current.details["pid"] == second.details["pid"] != first.details["pid"]  # ...but the record is not
    assert current.refresh().state is DeploymentState.READY
