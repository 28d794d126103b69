"""``mltrack artifacts list|upload`` on a real sqlite store with its local artifact folder.

The same commands against S3 through the tracking server's proxy are in
tests/integration/test_s3_artifacts.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

import mltrack


@pytest.fixture
def run_id(sqlite_uri: str) -> str:
    with mltrack.start_run() as run:
        pass
    return run.run_id


def test_upload_of_a_folder_keeps_its_layout_under_the_artifact_path(run_id: str, tmp_path: Path) -> None:
    folder = tmp_path / "eval"
    (folder / "plots").mkdir(parents=True)
    (folder / "scores.json").write_text('{"f1": 0.8}')
    (folder / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    result = run_cli("artifacts", "upload", run_id, str(folder), "--artifact-path", "eval", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == ["eval/scores.json", "eval/plots/roc.csv"]
    listed = json.loads(run_cli("artifacts", "list", run_id, "eval/plots", "--json").stdout)
    assert listed == [{"path": "eval/plots/roc.csv", "is_dir": False, "size": 16}]


def test_a_small_upload_shows_no_progress_bar(run_id: str, tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("x" * 1000)
    result = run_cli("artifacts", "upload", run_id, str(tmp_path / "small.txt"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("uploaded 1 file(s), 1.0 kB, to ")


def test_an_upload_above_the_threshold_shows_a_progress_bar_in_bytes(run_id: str, tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(bytes(2_500_000))
    result = run_cli(
        "artifacts",
        "upload",
        run_id,
        str(tmp_path / "weights.bin"),
        "--progress-threshold",
        "2MB",
        env={"COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    assert "weights.bin" in result.stderr and "2.5/2.5 MB" in result.stderr
    below = run_cli("artifacts", "upload", run_id, str(tmp_path / "weights.bin"), "--progress-threshold", "3MB")
    assert below.returncode == 0 and below.stderr == ""


def test_the_progress_bar_reads_how_far_the_file_has_been_read(tmp_path: Path) -> None:
    from mltrack.cli.artifacts import _bytes_read

    path = tmp_path / "data.bin"
    path.write_bytes(bytes(10_000))
    assert _bytes_read(path) == 0
    with path.open("rb") as reader:
        reader.read(4096)
        assert _bytes_read(path) == 4096
    assert _bytes_read(path) == 0


def test_a_bad_artifact_path_or_threshold_is_one_line_naming_the_option(run_id: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = run_cli("artifacts", "upload", run_id, str(tmp_path / "a.txt"), "--artifact-path", "../up")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("Error: --artifact-path '../up': must be a plain relative path")
    result = run_cli(
        "artifacts", "upload", run_id, str(tmp_path / "a.txt"), env={"MLTRACK_UPLOAD_PROGRESS_THRESHOLD": "lots"}
    )
    assert result.returncode == 2
    assert "'lots' is not a size" in result.stderr


def test_upload_to_an_unknown_run_names_the_run_and_the_store(sqlite_uri: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = run_cli("artifacts", "upload", "nosuchrun", str(tmp_path / "a.txt"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"Error: run 'nosuchrun' does not exist in {sqlite_uri}"
