"""docs/ui.md documents every hook mltrack-ui declares, with its exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mltrack_ui import hookspecs

DOC = Path(__file__).resolve().parents[3] / "docs" / "ui.md"


def ui_hooks() -> dict[str, object]:
    return {
        name: func for name, func in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(func, "mltrack_spec")
    }


def test_the_ui_declares_its_hooks() -> None:
    assert set(ui_hooks()) == {"ui_run_panels", "ui_model_panels", "ui_register_routes"}


@pytest.mark.parametrize("name", sorted(ui_hooks()))
def test_every_ui_hook_is_documented_with_its_signature(name: str) -> None:
    signature = f"{name}({', '.join(inspect.signature(ui_hooks()[name]).parameters)})"  # type: ignore[arg-type]
    assert f"### `{signature}`" in DOC.read_text()


def test_the_doc_names_no_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^### `(ui_\w+)\(", DOC.read_text(), re.MULTILINE))
    assert documented == set(ui_hooks())
