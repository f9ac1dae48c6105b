"""Text out of an uploaded file, chosen by its extension: txt, md, json, csv, html and pdf."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Literal

import orjson
import pypdf
from pypdf.errors import PyPdfError

ErrorCode = Literal["unsupported_file", "invalid_file"]

_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".csv"})
_HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = _TEXT_SUFFIXES | _HTML_SUFFIXES | {".json", ".pdf"}
_COSTLY_SUFFIXES = _HTML_SUFFIXES | {".pdf"}


class ExtractionError(Exception):
    """The file cannot be turned into text; `code` is the vector store file's `last_error.code`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def is_costly(filename: str, data: bytes) -> bool:
    """PDF and HTML parsing can cost far more time and memory than the file's size suggests, so
    these run in a bounded worker process (extraction_worker.py); plain text is decoded in place."""
    return _suffix(filename, data) in _COSTLY_SUFFIXES


def _suffix(filename: str, data: bytes) -> str:
    suffix = PurePosixPath(filename.lower()).suffix
    if not suffix and data.startswith(b"%PDF-"):
        return ".pdf"
    return suffix


def extract_text(filename: str, data: bytes) -> str:
    suffix = _suffix(filename, data)
    if suffix == ".pdf":
        return _pdf_text(data)
    if suffix not in SUPPORTED_SUFFIXES and suffix:
        raise ExtractionError("unsupported_file", f"Files of type '{suffix}' are not supported; supported types: "
                                                  f"{', '.join(sorted(SUPPORTED_SUFFIXES))}.")
    text = decode_text(data)
    if suffix == ".json":
        _check_json(data)
    if suffix in _HTML_SUFFIXES:
        return html_text(text)
    return text


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252.

    Deliberately no statistical charset detection: on short documents it guesses wrong often
    (e.g. Baltic for French), and a wrong guess corrupts text silently. Windows-1252 is what
    non-UTF-8 text files are, overwhelmingly, and it decodes any byte sequence.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _check_json(data: bytes) -> None:
    try:
        orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise ExtractionError("invalid_file", f"The file is not valid JSON: {exc}.") from exc


def _pdf_text(data: bytes) -> str:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("invalid_file", "The PDF is encrypted.")
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError("invalid_file", f"The PDF cannot be read: {exc}.") from exc


class _TextCollector(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "head", "template", "noscript"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
                         "pre", "blockquote", "table", "ul", "ol", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.pieces.append(data)


def html_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    lines = (" ".join(line.split()) for line in "".join(collector.pieces).splitlines())
    return "\n".join(line for line in lines if line)
