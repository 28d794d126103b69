"""MkDocs hook (mkdocs.yml ``hooks``): every relative link of a page points at something that exists.

The pages link to each other and to the repository's files outside docs/ (tests, examples,
README.md). MkDocs itself checks only links between pages, and would fail the build on the
others, so its own check is lowered to "info" in mkdocs.yml and this one checks both: a target
that does not exist is a warning, which ``--strict`` makes an error.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.links")

LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"^(?P<fence>`{3,}|~{3,}).*?^(?P=fence)\s*$|`[^`\n]+`", re.MULTILINE | re.DOTALL)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    source = Path(page.file.abs_src_path)
    for match in LINK.finditer(CODE.sub("", markdown)):
        target = match.group("target").split("#", 1)[0]
        if not target or SCHEME.match(target) or target.startswith("/"):
            continue  # an anchor on the same page (MkDocs checks anchors), a URL, or an absolute path
        if not (source.parent / target).exists():
            log.warning("Doc file '%s' links to '%s', which does not exist", page.file.src_path, target)
    return markdown
