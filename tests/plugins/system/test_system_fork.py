"""Forked workers: a child inherits no sampler; a run the child starts gets one of its own."""

from __future__ import annotations

import json

from conftest import run_python

from .system_helpers import history

CHILD_STARTS_ITS_OWN_RUN = """
import json, multiprocessing, threading, time
import mltrack
from mltrack_system.sampler import REGISTRY

def samplers():
    return [t.name for t in threading.enumerate() if t.name.startswith("mltrack-system-")]

def worker(queue):
    seen = {"inherited": REGISTRY.run_ids(), "threads_at_fork": samplers()}
    with mltrack.start_run(nested=True) as own:
        time.sleep(1.2)
        seen.update(own=own.run_id, registered=REGISTRY.run_ids(), threads=len(samplers()))
    seen["threads_after"] = samplers()
    queue.put(json.dumps(seen))

with mltrack.start_run() as run:
    time.sleep(0.6)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=worker, args=(queue,))
    child.start()
    seen = json.loads(queue.get(timeout=120))
    child.join(60)
    seen.update(parent=run.run_id, exitcode=child.exitcode, parent_threads=len(samplers()))
print(json.dumps(seen))
"""


def test_a_forked_worker_samples_only_the_run_it_starts(sqlite_uri: str) -> None:
    result = run_python(CHILD_STARTS_ITS_OWN_RUN, env={"MLTRACK_PLUGINS__SYSTEM__INTERVAL_S": "0.5"}, timeout=240)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert (seen["exitcode"], seen["inherited"], seen["threads_at_fork"]) == (0, [], [])
    assert (seen["registered"], seen["threads"], seen["threads_after"]) == ([seen["own"]], 1, [])
    assert seen["parent_threads"] == 1  # the parent's sampler went on while the child ran

    # Each run's steps are one sampler's: 0, 1, 2, ... with no step written twice by two processes.
    for run_id in (seen["parent"], seen["own"]):
        points = history(sqlite_uri, run_id, "system/process_rss_megabytes")
        assert [step for step, _ in points] == list(range(len(points))) and len(points) >= 2, run_id
