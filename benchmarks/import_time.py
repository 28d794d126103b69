"""Start-up cost: ``import mltrack`` and ``mltrack --help`` beside ``import mlflow``.

What is measured:

* **wall time** of each command, run ``--repeat`` times (default 7) in fresh subprocesses, median
  reported (min and max beside it). Commands: ``python -c "import mltrack"``, the ``mltrack
  --help`` console script (``python -m mltrack --help`` if the script is not installed),
  ``python -c "import mlflow"`` and, for reference, ``python -c "pass"`` (interpreter start-up).
  Runs are interleaved (one of each command per round) so that machine noise hits all alike,
  after ``--warmup`` untimed rounds that fill the OS file cache and write ``.pyc`` files.
* **peak RSS** of each command, reported by the child itself at exit: ``VmHWM`` from
  ``/proc/self/status`` (``ru_maxrss`` where there is no ``/proc``), median over ``--rss-repeat``
  extra runs. Not the ``ru_maxrss`` that ``wait4``/``RUSAGE_CHILDREN`` give the parent: on Linux
  that keeps the high-water mark of the memory the child had before ``exec`` (the parent's, when
  ``subprocess`` uses ``vfork``), so every small child would show the parent's size. For ``mltrack
  --help`` the child runs the console script's two lines (``from mltrack.cli import main;
  main()``) under ``python -c`` with the report registered ``atexit``.
* **heavy imports**: one more child imports ``mltrack``, then builds the CLI
  (``mltrack.cli.build_cli()``, which loads plugins' commands) and renders ``--help``, and reports
  after each step which heavy modules are in ``sys.modules``. ``mlflow``, ``pydantic`` and
  ``sqlalchemy`` must not be; the others are listed for information.

Target (PASS/MISS; the script always exits 0, it is a report): median ``import mltrack`` wall
time ≤ 0.25 of median ``import mlflow`` wall time, both including interpreter start-up.

Run:  .venv/bin/python benchmarks/import_time.py [--repeat 7] [--warmup 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TARGET_RATIO = 0.25
MUST_NOT_IMPORT = ("mlflow", "pydantic", "sqlalchemy")
ALSO_HEAVY = (
    "pydantic_settings",
    "pydantic_core",
    "alembic",
    "pandas",
    "numpy",
    "google.protobuf",
    "requests",
    "yaml",
    "rich",
    "click",
    "pluggy",
    "dotenv",
    "importlib.metadata",
)

# Runs in a child: import mltrack, build the CLI, render --help; report sys.modules after each step.
CHECK_SNIPPET = r"""
import contextlib, io, json, sys
HEAVY = {heavy!r}
stdlib = set(sys.stdlib_module_names)
def snapshot():
    third_party = sorted({{m.split(".")[0] for m in sys.modules}} - stdlib - {{"mltrack", "__main__"}})
    return {{"heavy": [m for m in HEAVY if m in sys.modules], "third_party": third_party, "count": len(sys.modules)}}
before = snapshot()
import mltrack
after_import = snapshot()
from mltrack.cli import build_cli
group = build_cli()
after_cli = snapshot()
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        group.main(args=["--help"], prog_name="mltrack", standalone_mode=True)
    except SystemExit:
        pass
after_help = snapshot()
print("CHECK " + json.dumps({{"interpreter": before, "import mltrack": after_import,
      "build_cli()": after_cli, "mltrack --help": after_help, "help_chars": len(out.getvalue())}}))
"""


# Appended to a child's code: report this process's own peak RSS (KiB) on stderr at exit.
RSS_REPORT = """
import atexit as _atexit, sys as _sys
def _report_rss():
    kib = None
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    kib = int(line.split()[1])
    except OSError:
        pass
    if kib is None:
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _sys.stderr.write(f"\\nPEAK_RSS_KIB {kib}\\n")
_atexit.register(_report_rss)
"""


@dataclass
class Command:
    name: str
    argv: list[str]
    rss_code: str  # the same work as ``argv``, as python -c code (RSS_REPORT is put in front)
    wall_s: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRACK_"))}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, int, str]:
    """Run ``argv``; return (wall seconds, exit code, stderr)."""
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    wall = time.perf_counter() - started
    return wall, done.returncode, done.stderr.decode(errors="replace")


def peak_rss_kib(code: str, env: dict[str, str], cwd: str) -> int | None:
    """Run ``code`` in a fresh interpreter that reports its own peak RSS at exit."""
    _, _, err = run_once([sys.executable, "-c", RSS_REPORT + code], env, cwd)
    for line in reversed(err.splitlines()):
        if line.startswith("PEAK_RSS_KIB "):
            return int(line.split()[1])
    return None


def console_script() -> tuple[str, list[str]]:
    """The ``mltrack`` console script next to this interpreter, else ``python -m mltrack``."""
    beside = Path(sys.executable).parent / "mltrack"
    found = str(beside) if beside.is_file() else shutil.which("mltrack")
    if found:
        return "mltrack --help", [found, "--help"]
    return "python -m mltrack --help", [sys.executable, "-m", "mltrack", "--help"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command (median; default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--rss-repeat", type=int, default=3, help="peak-RSS runs per command (median; default 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    env = clean_env()
    # A neutral working directory: no mltrack.toml, pyproject.toml or .env is picked up.
    cwd = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
    py = sys.executable
    cli_name, cli_argv = console_script()
    cli_code = "import sys\nsys.argv = ['mltrack', '--help']\nfrom mltrack.cli import main\nsys.exit(main())\n"
    commands = [
        Command('python -c "pass"', [py, "-c", "pass"], "pass\n"),
        Command('python -c "import mltrack"', [py, "-c", "import mltrack"], "import mltrack\n"),
        Command(cli_name, cli_argv, cli_code),
        Command('python -c "import mlflow"', [py, "-c", "import mlflow"], "import mlflow\n"),
    ]
    mlflow_version = subprocess.run(
        [py, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True, env=env, cwd=cwd
    ).stdout.strip()
    console.print(
        f"import_time: python {platform.python_version()} ({py}), mlflow {mlflow_version or '?'}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}; {args.repeat} runs each after {args.warmup} warm-up round(s)"
    )

    started = time.perf_counter()
    for round_no in range(args.warmup + args.repeat):
        for command in commands:
            wall, code, err = run_once(command.argv, env, cwd)
            if round_no < args.warmup:
                continue
            if code != 0:
                command.failures.append(f"exit {code}: {err.strip()[-300:]}")
            command.wall_s.append(wall)
    for _ in range(args.rss_repeat):
        for command in commands:
            rss = peak_rss_kib(command.rss_code, env, cwd)
            if rss is not None:
                command.rss_kib.append(rss)
    console.print(
        f"{len(commands) * args.repeat} timed runs and {len(commands) * args.rss_repeat} memory runs "
        f"in {time.perf_counter() - started:.1f}s"
    )

    table = Table(title="Start-up time and memory (fresh subprocess each run)", header_style="bold")
    for name, justify in (
        ("command", "left"),
        ("median ms", "right"),
        ("min ms", "right"),
        ("max ms", "right"),
        ("net of python ms", "right"),
        ("peak RSS MiB", "right"),
        ("exit", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    baseline = commands[0].median_s
    for command in commands:
        table.add_row(
            command.name,
            f"{1000 * command.median_s:.0f}",
            f"{1000 * min(command.wall_s):.0f}",
            f"{1000 * max(command.wall_s):.0f}",
            "" if command is commands[0] else f"{1000 * (command.median_s - baseline):.0f}",
            f"{statistics.median(command.rss_kib) / 1024:.1f}" if command.rss_kib else "n/a",
            "ok" if not command.failures else f"[red]{len(command.failures)} failed: {command.failures[0]}[/]",
        )
    console.print(table)
    for command in commands:
        if not command.failures:
            continue
        console.print(f"[red]{command.name} failed {len(command.failures)}x[/]: {command.failures[0]}")

    # Which modules do import and CLI construction pull in?
    snippet = CHECK_SNIPPET.format(heavy=list(MUST_NOT_IMPORT + ALSO_HEAVY))
    checked = subprocess.run([py, "-c", snippet], capture_output=True, text=True, env=env, cwd=cwd)
    line = next((x for x in checked.stdout.splitlines() if x.startswith("CHECK ")), None)
    modules_ok: bool | None = None
    console.print()
    if line is None:
        console.print(f"[red]module check failed (exit {checked.returncode}):[/] {checked.stderr.strip()[-500:]}")
    else:
        data = json.loads(line[len("CHECK ") :])
        mod_table = Table(title="Modules loaded (fresh interpreter, cumulative)", header_style="bold")
        mod_table.add_column("after")
        mod_table.add_column("sys.modules", justify="right")
        mod_table.add_column("forbidden (" + ", ".join(MUST_NOT_IMPORT) + ")")
        mod_table.add_column("other heavy / notable modules")
        mod_table.add_column("third-party top-level packages")
        modules_ok = True
        for step in ("interpreter", "import mltrack", "build_cli()", "mltrack --help"):
            snap = data[step]
            bad = [m for m in snap["heavy"] if m in MUST_NOT_IMPORT]
            other = [m for m in snap["heavy"] if m not in MUST_NOT_IMPORT]
            if step != "interpreter":
                modules_ok = modules_ok and not bad
            mod_table.add_row(
                step,
                str(snap["count"]),
                f"[red]{', '.join(bad)}[/]" if bad else "[green]none[/]",
                ", ".join(other) or "-",
                ", ".join(snap["third_party"]) or "-",
            )
        console.print(mod_table)
        if data["help_chars"] == 0:
            console.print("[yellow]note: rendering --help printed nothing[/]")
        if checked.stderr.strip():
            console.print(f"[dim]stderr of the check child: {checked.stderr.strip()[-400:]}[/]")

    # Ratios and targets.
    by_name = {c.name: c for c in commands}
    ours = by_name['python -c "import mltrack"']
    theirs = by_name['python -c "import mlflow"']
    cli = by_name[cli_name]
    ratio = ours.median_s / theirs.median_s
    net_ratio = (ours.median_s - baseline) / max(theirs.median_s - baseline, 1e-9)
    console.print()
    console.print(
        f"import mltrack / import mlflow = {ratio:.3f} (wall, incl. interpreter start-up); "
        f"net of 'python -c pass': {net_ratio:.3f}"
    )
    console.print(
        f"import mlflow is {theirs.median_s / ours.median_s:.1f}x slower than import mltrack; "
        f"{cli_name} is {theirs.median_s / cli.median_s:.1f}x faster than import mlflow alone"
    )
    if ours.rss_kib and theirs.rss_kib:
        rss_ratio = statistics.median(ours.rss_kib) / statistics.median(theirs.rss_kib)
        console.print(f"peak RSS import mltrack / import mlflow = {rss_ratio:.2f}")

    def verdict(ok: bool | None) -> str:
        if ok is None:
            return "[yellow]n/a[/]"
        return "[bold green]PASS[/]" if ok else "[bold red]MISS[/]"

    targets = Table(title="Targets", header_style="bold")
    targets.add_column("target")
    targets.add_column("result", justify="right")
    targets.add_column("verdict")
    targets.add_row(f"import mltrack / import mlflow ≤ {TARGET_RATIO}", f"{ratio:.3f}", verdict(ratio <= TARGET_RATIO))
    targets.add_row(
        "no " + ", ".join(MUST_NOT_IMPORT) + " after import mltrack / build_cli() / --help",
        "see modules table",
        verdict(modules_ok),
    )
    targets.add_row("every timed command exited 0", "", verdict(not any(c.failures for c in commands)))
    console.print(targets)


if __name__ == "__main__":
    main()
