"""Citation markers in model text (`<|file-…|>`) turned into `file_citation` annotations.

The rule is the seed system's (SEED-SYSTEM.md §3.6): every marker is removed together with one
space directly before it; a marker naming a file that this turn's searches returned becomes an
annotation whose `index` is the position in the cleaned text where the marker stood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CITATION_MARKER = re.compile(r"<\|(?P<file_id>file-[A-Za-z0-9_-]+)\|>")


@dataclass(frozen=True)
class CitedText:
    text: str
    annotations: list[dict[str, Any]]


def extract_citations(text: str, cited_files: Mapping[str, str]) -> CitedText:
    """`cited_files` maps the file ids the searches returned to their filenames."""
    pieces: list[str] = []
    length = 0
    annotations: list[dict[str, Any]] = []
    position = 0
    for marker in CITATION_MARKER.finditer(text):
        before = text[position:marker.start()]
        if before.endswith(" "):
            before = before[:-1]
        pieces.append(before)
        length += len(before)
        file_id = marker.group("file_id")
        if file_id in cited_files:
            annotations.append({"type": "file_citation", "file_id": file_id, "filename": cited_files[file_id],
                                "index": length})
        position = marker.end()
    pieces.append(text[position:])
    return CitedText(text="".join(pieces), annotations=annotations)
