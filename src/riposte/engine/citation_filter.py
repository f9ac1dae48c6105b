"""Citations while the text streams: `<|file-…|>` markers cut out and turned into
`file_citation` annotations, and links to web search sources turned into `url_citation`
annotations (tools/citations.py holds the rules).

The model is told to cite retrieved files as `<|file-id|>` right before punctuation. Clients must
see clean text, and the deltas must add up to the final text, so markers are cut out of the deltas
themselves: a marker split across deltas is held back until it is complete. Like the recording
system, each marker takes one space before it along, and `index` points at the character after
the cut (usually the punctuation). Markers naming files this turn did not retrieve are removed
without an annotation. Links are never cut: a link that may still be growing is only waited on
before its annotation is reported, while its text streams on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from riposte.tools.citations import CitableUrls, scan_url_citations

_MARKER = re.compile(r"<\|(file-[A-Za-z0-9_-]+)\|>")
# A tail that could still grow into a marker: "<", "<|", "<|fi", "<|file-ab", "<|file-ab|".
_PARTIAL_MARKER = re.compile(r"<(\|(f(i(l(e(-[A-Za-z0-9_-]*\|?)?)?)?)?)?)?$")

Annotation = dict[str, Any]
# Text waited on for a link longer than this is given up: no real link is that long.
_MAX_PENDING_LINK_TEXT = 4096


class CitationFilter:
    def __init__(self, citable_files: Mapping[str, str], citable_urls: CitableUrls | None = None) -> None:
        self._files = citable_files
        self._urls = citable_urls
        self._held = ""
        self._emitted = 0  # length of clean text emitted so far
        self._link_text = ""  # emitted text that may still turn into a link
        self._link_offset = 0  # where _link_text starts in the clean text

    def feed(self, delta: str) -> tuple[str, list[Annotation]]:
        """Clean text that is safe to emit now, and the annotations completed by this delta."""
        return self._scan(self._held + delta, final=False)

    def flush(self) -> tuple[str, list[Annotation]]:
        """Whatever was held back, at the end of the message."""
        return self._scan(self._held, final=True)

    def _scan(self, text: str, *, final: bool) -> tuple[str, list[Annotation]]:
        clean, annotations = self._cut_markers(text, final=final) if self._files else (text, [])
        if self._urls:
            annotations += self._link_citations(clean, final=final)
        return clean, annotations

    def _cut_markers(self, text: str, *, final: bool) -> tuple[str, list[Annotation]]:
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

    def _link_citations(self, clean: str, *, final: bool) -> list[Annotation]:
        assert self._urls is not None
        text = self._link_text + clean
        scan = scan_url_citations(text, self._urls, self._link_offset, final=final)
        self._link_text = text[scan.pending_from:]
        self._link_offset += scan.pending_from
        if len(self._link_text) > _MAX_PENDING_LINK_TEXT:
            self._link_offset += len(self._link_text)
            self._link_text = ""
        return scan.annotations

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
