"""Streaming removal of `<|file-…|>` citation markers, turning them into `file_citation`
annotations as the text streams.

The model is told to cite retrieved files as `<|file-id|>` right before punctuation. Clients must
see clean text, and the deltas must add up to the final text, so markers are cut out of the deltas
themselves: a marker split across deltas is held back until it is complete. Like the recording
system, each marker takes one space before it along, and `index` points at the character after
the cut (usually the punctuation). Markers naming files this turn did not retrieve are removed
without an annotation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MARKER = re.compile(r"<\|(file-[A-Za-z0-9_-]+)\|>")
# A tail that could still grow into a marker: "<", "<|", "<|fi", "<|file-ab", "<|file-ab|".
_PARTIAL_MARKER = re.compile(r"<(\|(f(i(l(e(-[A-Za-z0-9_-]*\|?)?)?)?)?)?)?$")

Annotation = dict[str, Any]


class CitationFilter:
    def __init__(self, citable_files: Mapping[str, str]) -> None:
        self._files = citable_files
        self._held = ""
        self._emitted = 0  # length of clean text emitted so far

    def feed(self, delta: str) -> tuple[str, list[Annotation]]:
        """Clean text that is safe to emit now, and the annotations completed by this delta."""
        return self._scan(self._held + delta, final=False)

    def flush(self) -> tuple[str, list[Annotation]]:
        """Whatever was held back, at the end of the message."""
        return self._scan(self._held, final=True)

    def _scan(self, text: str, *, final: bool) -> tuple[str, list[Annotation]]:
        pieces: list[str] = []
        annotations: list[Annotation] = []
        position = 0
        for match in _MARKER.finditer(text):
            before = text[position:match.start()]
            pieces.append(before[:-1] if before.endswith(" ") else before)
            self._annotate(match.group(1), self._emitted + sum(map(len, pieces)), annotations)
            position = match.end()
        rest = text[position:]
        self._held = "" if final else _tail_to_hold(rest)
        pieces.append(rest[: len(rest) - len(self._held)])
        clean = "".join(pieces)
        self._emitted += len(clean)
        return clean, annotations

    def _annotate(self, file_id: str, index: int, annotations: list[Annotation]) -> None:
        if file_id in self._files:
            annotations.append({"type": "file_citation", "file_id": file_id, "filename": self._files[file_id],
                                "index": index})


def _tail_to_hold(rest: str) -> str:
    partial = _PARTIAL_MARKER.search(rest)
    if partial is not None:
        start = partial.start()
        # The space before a marker goes with it, so hold that back too.
        return rest[start - 1:] if start > 0 and rest[start - 1] == " " else rest[start:]
    return " " if rest.endswith(" ") else ""
