"""Runs one documentation page's code blocks in order, as a reader pasting them would.

Started by tests/core/test_docs.py in the page's scratch folder; reads the blocks as JSON from stdin
(``[{"where": "docs/x.md:12", "path": ..., "line": 12, "language": "python"|"shell"|"console",
"code": ...}]``). Python blocks share one ``__main__`` namespace, so a later block may use what an
earlier one defined; shell blocks run in ``bash`` with ``-e -o pipefail`` in the same folder. Before
each block it prints a ``::block <where>`` line and after it ``::took <seconds>``; at the first
failure it prints the error and ``::failed <where>`` and exits 1, so the test can show the failing
block's own output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
import types


def console_commands(code: str) -> str:
    """The commands of a ``console`` block: its ``$ `` lines, without the prompt (the rest is output)."""
    return "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))


def run_python(path: str, line: int, code: str, namespace: dict[str, object]) -> None:
    # Blank lines in front make tracebacks name the Markdown file and the block's own line numbers.
    exec(compile("\n" * line + code, path, "exec"), namespace)


def print_error(error: BaseException) -> None:
    """The traceback from the block's own frames on: this runner's frames only hide the reader's."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def run_shell(code: str) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], stdin=subprocess.DEVNULL).returncode


def main() -> int:
    blocks = json.load(sys.stdin)
    # A fresh module as __main__: functions defined by a block pickle (and cloudpickle) as a script's would.
    main_module = types.ModuleType("__main__")
    sys.modules["__main__"] = main_module
    for block in blocks:
        where = block["where"]
        print(f"::block {where}", flush=True)
        started = time.monotonic()
        try:
            if block["language"] == "python":
                run_python(block["path"], block["line"], block["code"], main_module.__dict__)
                status = 0
            elif block["language"] == "console":
                status = run_shell(console_commands(block["code"]))
            else:
                status = run_shell(block["code"])
        except BaseException as error:  # SystemExit and KeyboardInterrupt from a block are failures too
            print_error(error)
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"::took {time.monotonic() - started:.2f}", flush=True)
        if status != 0:
            print(f"::failed {where} (exit status {status})", flush=True)
            return 1
    print("::done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
