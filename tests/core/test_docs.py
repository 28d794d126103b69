"""The documentation stays true: every hook is documented with its exact signature, and every code
block a reader would paste runs as written.

Every fenced ```python, ```bash, ```sh, ```shell and ```console block of README.md and
docs/**/*.md runs here, page by page, in the order of the page, in a scratch folder of its own
(tests/core/docs_runner.py): Python blocks share one namespace, shell blocks run in bash with the
repository's .venv first on PATH. The folder starts with an empty, migrated MLflow sqlite store as
``./mlflow.db`` (where MLTrack writes with no configuration) and MLTRACK_DATA_DIR inside it. A block
is left out only when the line right before its fence says why, in one of three ways:

- ``<!-- not-run: why -->``: not run here (it installs packages, needs a cloud account, starts a
  server that runs until Ctrl+C, ...); the reason is required;
- ``<!-- excerpt: path/in/the/repository -->``: the block is a verbatim excerpt of that file, which is
  tested where it lives; the test checks that the file still contains it;
- ``<!-- signatures -->``: each line is the signature of a public ``mltrack`` function; the test
  compares it with the function's real one.

README.md ("Contributing") tells contributors the same.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import mltrack
from mltrack import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DOC = ROOT / "docs" / "hooks.md"
README = ROOT / "README.md"
QUICKSTART = ROOT / "examples" / "quickstart.py"
PLUGIN_GUIDE = ROOT / "docs" / "plugin-authors.md"
FIXTURE_PLUGIN = ROOT / "tests" / "fixtures" / "mltrack-fixture-plugin"
RUNNER = Path(__file__).with_name("docs_runner.py")
PAGE_TIMEOUT_S = 180

# language of the fence -> how docs_runner.py runs it
RUNNABLE = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell", "console": "console"}
# code the runner cannot run: such a block must be rewritten as one of the above, or marked
NOT_RUNNABLE = {"pycon", "ipython", "python3", "zsh", "fish", "shell-session", "powershell", "ps1", "bat", "cmd"}
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|excerpt|signatures)\b\s*:?\s*(?P<argument>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


# ---------------------------------------------------------------------------------------------------
# the pages and their blocks


def doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


@dataclass(frozen=True)
class Block:
    """A fenced code block: the page, the line of its opening fence, its language and its text."""

    page: Path
    line: int
    language: str
    code: str
    marker: str | None = None  # not-run, excerpt or signatures
    argument: str = ""  # the reason, or the excerpt's file

    @property
    def where(self) -> str:
        return f"{page_id(self.page)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.marker is None and self.language in RUNNABLE


def dedent(line: str, indent: int) -> str:
    """A block inside a list item is indented like its fence: read it as the reader copies it."""
    return line[indent:] if not line[:indent].strip() else line.lstrip()


def fenced_blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        code = "\n".join(dedent(line, indent) for line in lines[i + 1 : end])
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                language=(opening["info"].split() or [""])[0].lower(),
                code=code + "\n",
                marker=marker["kind"] if marker else None,
                argument=marker["argument"] if marker else "",
            )
        )
        i = end + 1
    return blocks


ALL_BLOCKS = [block for page in doc_pages() for block in fenced_blocks(page)]


def blocks_marked(kind: str) -> list[Block]:
    return [block for block in ALL_BLOCKS if block.marker == kind]


# ---------------------------------------------------------------------------------------------------
# running a page


@dataclass
class PageRun:
    """What running a page's blocks gave: its scratch folder, each block's output, the failed block."""

    folder: Path
    returncode: int
    seconds: float
    output: dict[str, str] = field(default_factory=dict)  # where -> the block's output
    took: dict[str, float] = field(default_factory=dict)  # where -> seconds
    failed: str | None = None
    tail: str = ""  # output after the last block (exit handlers)


def stop_group(pgid: int, wait_s: float = 5.0) -> None:
    """SIGKILL every process of the group, and wait (a little) until they are gone."""
    deadline = time.monotonic() + wait_s
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
        while time.monotonic() < deadline:
            os.killpg(pgid, 0)
            time.sleep(0.05)


def run_page(page: Path, folder: Path, store_template: Path) -> PageRun:
    blocks = [b for b in fenced_blocks(page) if b.runs]
    folder.mkdir(parents=True)
    shutil.copyfile(store_template, folder / "mlflow.db")
    spec = [
        {"where": b.where, "path": str(b.page), "line": b.line, "language": RUNNABLE[b.language], "code": b.code}
        for b in blocks
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLTRACK_DATA_DIR"] = str(folder / ".mltrack")
    env["PYTHONUNBUFFERED"] = "1"
    started = time.monotonic()
    # Output goes to a file, not a pipe: a process a block left in the background would keep a pipe
    # open. The runner leads its own session, so whatever it leaves is stopped with it.
    log = folder / "blocks.log"
    with open(log, "w") as output:
        runner = subprocess.Popen(
            [sys.executable, str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=folder,
            env=env,
            start_new_session=True,
        )
        try:
            runner.communicate(json.dumps(spec), timeout=PAGE_TIMEOUT_S)
            returncode = runner.returncode
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            stop_group(runner.pid)
            runner.wait()
    text = log.read_text(errors="replace")
    if returncode == -1:
        text += f"\n(timed out after {PAGE_TIMEOUT_S} s)\n"
    result = PageRun(folder=folder, returncode=returncode, seconds=time.monotonic() - started)
    current: str | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("::block "):
            current = line.removeprefix("::block ").strip()
            result.output[current] = ""
        elif line.startswith("::took ") and current is not None:
            result.took[current] = float(line.split()[1])
        elif line.startswith("::failed "):
            result.failed = current
        elif line.startswith("::done"):
            current = None
        elif current is None:
            result.tail += line
        else:
            result.output[current] += line
    if returncode != 0 and result.failed is None:
        result.failed = current  # killed by the timeout while this block ran (or the runner itself broke)
    return result


@pytest.fixture(scope="module")
def page_runs(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Path], PageRun]]:
    """Runs each page once per module, however many tests look at the result."""
    runs: dict[Path, PageRun] = {}
    base = tmp_path_factory.mktemp("pages")

    def get(page: Path) -> PageRun:
        if page not in runs:
            runs[page] = run_page(page, base / page_id(page).replace("/", "__"), _sqlite_template)
        return runs[page]

    yield get


def env_without_tracking_uri() -> dict[str, str]:
    """This process's environment (strict plugins, broken fixtures disabled) minus any tracking URI,
    so a child uses the default sqlite store in its working directory."""
    return {k: v for k, v in os.environ.items() if k not in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI")}


def runs_in(folder: Path, experiment: str) -> list[dict[str, Any]]:
    """The runs of ``experiment`` in the folder's ./mlflow.db, read in this process (the store fixture
    has imported MLflow already; a ``mltrack runs list`` would cost a second MLflow import)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {folder / 'mlflow.db'}"
    return [
        {
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "params": run.data.params,
            "metrics": run.data.metrics,
        }
        for run in client.search_runs([found.experiment_id])
    ]


# ---------------------------------------------------------------------------------------------------
# every block is run or marked


def test_the_scan_finds_the_pages_and_their_blocks() -> None:
    assert {README, PLUGIN_GUIDE, ROOT / "docs" / "user-guide.md"} <= set(doc_pages())
    assert sum(block.runs for block in ALL_BLOCKS) >= 10


def test_blocks_are_read_as_a_reader_copies_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro.\n\n"
        "```python\nprint(1)\n```\n\n"
        "- a list item:\n\n"
        "  <!-- not-run: needs a GPU -->\n"
        "  ```bash\n  nvidia-smi\n  if true; then\n      echo indented\n  fi\n  ```\n\n"
        "~~~~ Console title\n$ mltrack --help\n```\n~~~~\n"
    )

    first, second, third = fenced_blocks(page)

    assert (first.line, first.language, first.code, first.runs) == (3, "python", "print(1)\n", True)
    assert (second.marker, second.argument, second.runs) == ("not-run", "needs a GPU", False)
    assert second.code == "nvidia-smi\nif true; then\n    echo indented\nfi\n"
    assert (third.language, third.code) == ("console", "$ mltrack --help\n```\n")


def test_a_failing_block_is_reported_with_its_line_and_its_own_output(_sqlite_template: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nanswer = 42\nprint('from python')\n```\n\n"
        "```bash\necho \"from bash: $(python -c 'print(6 * 7)')\"\n```\n\n"
        "```python\nprint(answer)\nraise ValueError('wrong')\n```\n\n"
        "```bash\necho never\n```\n"
    )

    result = run_page(page, tmp_path / "run", _sqlite_template)

    assert result.returncode == 1
    assert result.failed == "page.md:10"
    assert result.output["page.md:1"] == "from python\n"
    assert result.output["page.md:6"] == "from bash: 42\n"
    failed_output = result.output["page.md:10"]
    assert failed_output.startswith("42\n")  # the namespace is shared with the first block
    assert f'File "{page}", line 12' in failed_output and "ValueError: wrong" in failed_output
    assert "page.md:15" not in result.output


def test_a_shell_block_stops_at_its_first_failing_command(_sqlite_template: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```console\n$ echo before\nbefore\n$ false | cat\n$ echo after\n```\n")

    result = run_page(page, tmp_path / "run", _sqlite_template)

    assert (result.failed, result.output["page.md:1"]) == ("page.md:1", "before\n")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_process_a_block_leaves_in_the_background_is_stopped_with_the_page(
    _sqlite_template: Path, tmp_path: Path
) -> None:
    page = tmp_path / "page.md"
    page.write_text("```bash\nsleep 297 &\necho $! > sleeper.pid\n```\n")

    result = run_page(page, tmp_path / "run", _sqlite_template)

    assert result.returncode == 0 and result.seconds < 60
    proc = Path("/proc") / (tmp_path / "run" / "sleeper.pid").read_text().strip()
    # gone (a zombie waiting for init to reap it has no command line; another process may have its pid)
    assert not (proc / "cmdline").exists() or (proc / "cmdline").read_bytes() != b"sleep\x00297\x00"


def test_every_fenced_block_names_its_language() -> None:
    bare = [block.where for block in ALL_BLOCKS if not block.language]
    assert not bare, f"fenced blocks without a language (write ```python, ```bash, ```text, ...): {bare}"


def test_every_code_block_can_be_run_or_is_marked() -> None:
    unrunnable = [f"{b.where} (```{b.language})" for b in ALL_BLOCKS if b.language in NOT_RUNNABLE and b.marker is None]
    assert not unrunnable, (
        "these blocks cannot be run by the docs test: mark it or make it runnable (write it as ```python or ```bash, "
        f"or put <!-- not-run: why --> on the line before the fence): {unrunnable}"
    )


def test_every_marker_says_why_or_names_an_existing_file() -> None:
    problems = []
    for block in blocks_marked("not-run"):
        if not block.argument:
            problems.append(f"{block.where}: <!-- not-run --> without a reason: write <!-- not-run: why -->")
    for block in blocks_marked("excerpt"):
        if not (ROOT / block.argument).is_file():
            problems.append(f"{block.where}: <!-- excerpt: {block.argument} --> names no file of the repository")
    for block in blocks_marked("signatures"):
        if block.language != "python":
            problems.append(f"{block.where}: <!-- signatures --> is for ```python blocks")
    assert not problems, "\n".join(problems)


def test_every_marker_sits_right_before_a_fence() -> None:
    misplaced = []
    for page in doc_pages():
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if MARKER.match(line) and (number == len(lines) or not FENCE.match(lines[number])):
                misplaced.append(f"{page_id(page)}:{number}")
    assert not misplaced, f"markers must be on the line right before the fence they mark: {misplaced}"


@pytest.mark.parametrize("doc_page", [p for p in doc_pages() if any(b.runs for b in fenced_blocks(p))], ids=page_id)
def test_the_pages_code_blocks_run_as_written(doc_page: Path, page_runs: Callable[[Path], PageRun]) -> None:
    # not named `page`: that is the browser tests' fixture, and sharing its name regroups them here
    result = page_runs(doc_page)
    if result.failed is not None:
        block = next(b for b in fenced_blocks(doc_page) if b.where == result.failed)
        output = result.output.get(result.failed, "") + result.tail
        pytest.fail(
            f"{result.failed}: this ```{block.language} block failed (fix the docs; mark it <!-- not-run: why --> "
            f"only if it cannot run in a test):\n{block.code}--- its output ---\n{output}",
            pytrace=False,
        )
    assert result.returncode == 0, f"{page_id(doc_page)}: the blocks ran, then the process failed:\n{result.tail}"


@pytest.mark.parametrize("block", blocks_marked("excerpt"), ids=lambda b: b.where)
def test_an_excerpt_is_still_in_its_file(block: Block) -> None:
    source = (ROOT / block.argument).read_text()
    assert block.code.strip() in source, (
        f"{block.where} is no longer an excerpt of {block.argument}: copy the file's current code into the block"
    )


def test_every_install_command_uses_the_readmes_form_with_this_version() -> None:
    """MLTrack is not on PyPI and ``mltrack`` there is another project: every ``pip install`` of the
    meta-package names the wheels (``--find-links``) and pins this version, as the code's hints do."""
    wrong = []
    for page in doc_pages():
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if "pip install" not in line:
                continue
            for match in re.finditer(r"mltrack\[[\w,-]+\]\S*", line):
                if "--find-links" not in line or f"=={mltrack.__version__}" not in match.group():
                    wrong.append(f"{page_id(page)}:{number}: {line.strip()}")
    assert not wrong, (
        f'write `pip install --find-links dist "mltrack[<extras>]=={mltrack.__version__}"` (README.md, '
        "Installing MLTrack elsewhere):\n" + "\n".join(wrong)
    )


# ---------------------------------------------------------------------------------------------------
# signatures


@dataclass(frozen=True)
class Documented:
    name: str
    parameters: list[tuple[str, str, object]]  # name, kind, default (inspect.Parameter.empty if none)
    returns: str


def documented_signatures(code: str) -> list[Documented]:
    """``name(params) -> type`` entries, one per line or spread over several; comments ignored."""
    text = "\n".join(re.sub(r"\s+#.*$", "", line) for line in code.splitlines())
    entries = [e.strip() for e in re.split(r"\n(?=\w+\()", text) if e.strip()]
    documented = []
    for entry in entries:
        match = re.fullmatch(r"(\w+)\((.*)\)\s*->\s*(.+)", entry, re.DOTALL)
        assert match, f"not a signature (name(params) -> type): {entry!r}"
        name, params, returns = match.groups()
        args = ast.parse(f"def {name}({params}): pass").body[0].args  # type: ignore[attr-defined]
        parameters: list[tuple[str, str, object]] = []
        positional = [*args.posonlyargs, *args.args]
        defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
            ast.literal_eval(d) for d in args.defaults
        ]
        parameters += [(a.arg, "POSITIONAL_OR_KEYWORD", d) for a, d in zip(positional, defaults, strict=True)]
        if args.vararg:
            parameters.append((args.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
        parameters += [
            (a.arg, "KEYWORD_ONLY", inspect.Parameter.empty if d is None else ast.literal_eval(d))
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
        ]
        if args.kwarg:
            parameters.append((args.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
        documented.append(Documented(name, parameters, returns.strip()))
    return documented


def short_type(annotation: str) -> str:
    """``list[mlflow.entities.Run]`` -> ``list[Run]``: the docs may spell a type with its module."""
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", annotation).replace(" ", "")


@pytest.mark.parametrize("block", blocks_marked("signatures"), ids=lambda b: b.where)
def test_documented_signatures_are_the_real_ones(block: Block) -> None:
    problems = []
    for doc in documented_signatures(block.code):
        func = getattr(mltrack, doc.name, None)
        if func is None:
            problems.append(f"mltrack.{doc.name} does not exist")
            continue
        signature = inspect.signature(func)
        real = [(p.name, p.kind.name, p.default) for p in signature.parameters.values()]
        if real != doc.parameters:
            problems.append(f"{doc.name}: documented {doc.parameters}, real {real}")
        real_returns = signature.return_annotation
        if isinstance(real_returns, str) and short_type(real_returns) != short_type(doc.returns):
            problems.append(f"{doc.name}: documented -> {doc.returns}, real -> {real_returns}")
    assert not problems, f"{block.where}: the signatures differ from the code:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------------
# the hook reference


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """Every hook declared in mltrack.hookspecs (pluggy's HookspecMarker sets ``mltrack_spec``)."""
    return {
        name: func
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, f"{hookspecs.PROJECT_NAME}_spec")
    }


def signature_text(name: str, func: Callable[..., Any]) -> str:
    return f"{name}({', '.join(inspect.signature(func).parameters)})"


def headings(path: Path, level: str = "###") -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith(level + " ")]


def test_hookspecs_are_found() -> None:
    assert {"register_sinks", "infer_flavour", "on_run_end"} <= set(hookspec_functions())


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hook_has_a_heading_with_its_exact_signature(name: str) -> None:
    signature = signature_text(name, hookspec_functions()[name])
    matching = [h for h in headings(HOOKS_DOC) if signature in h]
    assert matching, f"docs/hooks.md has no '### ...{signature}...' heading"


def test_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = {m.group(1) for h in headings(HOOKS_DOC) if (m := re.search(r"`(\w+)\(", h))}
    assert documented == set(hookspec_functions())


# ---------------------------------------------------------------------------------------------------
# the README, the example and the tutorial


def test_readme_quickstart_records_the_runs_it_describes(page_runs: Callable[[Path], PageRun]) -> None:
    result = page_runs(README)
    assert result.failed is None, f"{result.failed} failed (see test_the_pages_code_blocks_run_as_written)"
    runs = runs_in(result.folder, "readme")
    assert sorted(r["name"] for r in runs) == ["manual", "train"]
    assert {r["status"] for r in runs} == {"FINISHED"}


def test_example_quickstart_runs_and_records_a_tracked_run(_sqlite_template: Path, tmp_path: Path) -> None:
    shutil.copyfile(_sqlite_template, tmp_path / "mlflow.db")  # an empty store, as a first run would create it
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_tracking_uri(),
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "finished with status FINISHED" in result.stdout
    [run] = runs_in(tmp_path, "quickstart")
    assert run["run_id"] in result.stdout
    assert run["params"]["learning_rate"] == "0.05"
    assert run["metrics"]["final_val_loss"] < 0.05


def test_plugin_tutorial_shows_the_fixture_plugin_code_unchanged() -> None:
    guide = PLUGIN_GUIDE.read_text()
    files = [FIXTURE_PLUGIN / "pyproject.toml", *sorted((FIXTURE_PLUGIN / "src" / "mltrack_fixture").glob("[!_]*.py"))]
    for path in files:
        assert path.read_text().strip() in guide, f"docs/plugin-authors.md no longer matches {path.relative_to(ROOT)}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_readme_lists_the_make_targets_that_make_help_prints() -> None:
    result = subprocess.run(["make", "--no-print-directory", "help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    readme = README.read_text()
    for line in result.stdout.splitlines():
        assert line in readme, f"README.md is missing the make help line {line!r}"
