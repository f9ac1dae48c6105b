"""Citations in model text, as pure functions.

- File citations: markers (`<|file-…|>`) turned into `file_citation` annotations. The rule is the
  seed system's (SEED-SYSTEM.md §3.6): every marker is removed together with one space directly
  before it; a marker naming a file that this turn's searches returned becomes an annotation whose
  `index` is the position in the cleaned text where the marker stood.
- URL citations: a markdown link `[label](url)` or a bare URL naming a source this turn's web
  searches returned becomes a `url_citation` annotation over the link's span (start and end
  index). The text is left as the model wrote it, as OpenAI's web search does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


_MARKDOWN_LINK = re.compile(r"\[(?P<label>[^\[\]\n]*)\]\((?P<url>https?://[^\s()<>]+)\)")
_BARE_URL = re.compile(r"https?://[^\s()<>\[\]\"'`]+")
_URL_TRAILING_PUNCTUATION = ".,;:!?*_"
_TRAILING_URL_CHARS = re.compile(r"[^\s()<>\[\]\"'`]*$")
# A `[` further back than this is not waited on: a link label is never this long.
_MAX_PENDING_LINK = 2000


def url_key(url: str) -> str:
    """What makes two URLs the same source: case-insensitive scheme and host, no fragment, no
    tracking parameters, no trailing slash."""
    parts = urlsplit(url.strip())
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not k.lower().startswith("utm_")])
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


class CitableUrls:
    """The sources this turn's web searches returned, by `url_key`, with their titles."""

    def __init__(self) -> None:
        self._titles: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._titles)

    def add(self, sources: Mapping[str, str]) -> None:
        for url, title in sources.items():
            self._titles.setdefault(url_key(url), title)

    def title(self, url: str) -> str | None:
        return self._titles.get(url_key(url))


@dataclass(frozen=True)
class UrlScan:
    annotations: list[dict[str, Any]]
    # Text from here on may still become (part of) a link and must be scanned again with more text.
    pending_from: int


def scan_url_citations(text: str, sources: CitableUrls, offset: int = 0, *, final: bool = True) -> UrlScan:
    """`url_citation` annotations for the links in `text` that name a source; indexes are shifted by
    `offset`. Unless `final`, a trailing link that may still be growing is left pending."""
    found: list[tuple[str, int, int]] = []
    link_spans = [match.span() for match in _MARKDOWN_LINK.finditer(text)]
    found += [(match.group("url"), *match.span()) for match in _MARKDOWN_LINK.finditer(text)]
    for match in _BARE_URL.finditer(text):
        if not any(start <= match.start() < end for start, end in link_spans):
            url = match.group().rstrip(_URL_TRAILING_PUNCTUATION) if match.end() < len(text) or final else ""
            found.append((url, match.start(), match.start() + len(url)))
    pending = len(text) if final else _pending_start(text, link_spans[-1][1] if link_spans else 0)
    annotations: list[dict[str, Any]] = []
    for url, start, end in sorted(found, key=lambda entry: entry[1]):
        title = sources.title(url) if url and end <= pending else None
        if title is not None:
            annotations.append({"type": "url_citation", "url": url, "title": title,
                                "start_index": offset + start, "end_index": offset + end})
    return UrlScan(annotations, pending)


def _pending_start(text: str, last_link_end: int) -> int:
    """Where a link that is not finished yet could begin: an unclosed `[` on the current line, or a
    trailing word that is or may become a bare URL (a bare URL ends only where the text goes on)."""
    pending = len(text)
    bracket = text.rfind("[", max(last_link_end, len(text) - _MAX_PENDING_LINK))
    if bracket >= 0 and "\n" not in text[bracket:]:
        pending = bracket
    word = _TRAILING_URL_CHARS.search(text)
    if word is not None and word.group():
        candidate = word.group()
        if _BARE_URL.match(candidate) or "https://".startswith(candidate) or "http://".startswith(candidate):
            pending = min(pending, word.start())
    return pending
