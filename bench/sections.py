"""Sections of bench/RESULTS.md written by the small bench modules (e.g. `bench.storage_growth`).

Each lives between two HTML comments, the opening one carrying the raw figures as JSON, so a
module can add a row to its own table, and `python -m bench`, which renders the rest of the file
from scratch, carries the sections over unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_SECTION = re.compile(r"<!-- section:(?P<name>[\w-]+) (?P<data>.*?) -->\n.*?<!-- /section:(?P=name) -->\n",
                      re.DOTALL)


def data(path: Path, name: str) -> Any:
    """The raw figures stored with the section, or None when the file has no such section."""
    for found in _SECTION.finditer(_text(path)):
        if found["name"] == name:
            return json.loads(found["data"])
    return None


def write(path: Path, name: str, markdown: str, figures: Any) -> None:
    raw = json.dumps(figures, separators=(",", ":"))
    block = f"<!-- section:{name} {raw} -->\n{markdown}<!-- /section:{name} -->\n"
    text = _text(path)
    for found in _SECTION.finditer(text):
        if found["name"] == name:
            path.write_text(text[:found.start()] + block + text[found.end():])
            return
    path.write_text(text + ("\n" if text and not text.endswith("\n\n") else "") + block)


def kept(path: Path) -> str:
    """Every section of the file as it is, to append to a freshly rendered report."""
    blocks = [found.group(0) for found in _SECTION.finditer(_text(path))]
    return "".join("\n" + block for block in blocks)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""
