"""Sections of bench/RESULTS.md written by the small bench modules (e.g. `bench.storage_growth`).

Each lives between two HTML comments, the opening one carrying the raw figures as JSON, so a
module can add a row to its own table, and `python -m bench`, which renders the rest of the file
from scratch, carries the sections over unchanged.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_SECTION = re.compile(r"<!-- section:(?P<name>[\w-]+) (?P<data>.*?) -->\n.*?<!-- /section:(?P=name) -->\n",
                      re.DOTALL)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A small bench module's command line, with the options they all share: which source tree to
    measure, the label of its row, and the file that holds the section."""
    arguments = argparse.ArgumentParser(prog=prog, description=description)
    arguments.add_argument("--riposte-src", type=Path, help="measure Riposte from this source tree")
    arguments.add_argument("--label", default="this build", help="the row's label in the section's table")
    arguments.add_argument("--out", type=Path, default=RESULTS)
    return arguments


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
