"""A folder of documents as a searchable corpus, for the offline web search provider.

Each document carries its URL and title:
- `.md`, `.markdown`, `.txt`: a front matter block first, `---` lines around `url: ...` and
  `title: ...`, then the text;
- `.json`: an object `{"url", "title", "content"}` or a list of them; `.jsonl`: one per line.
Documents are cut into passages at blank lines and ranked with BM25, in memory.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_PASSAGE_CHARS = 1200
_K1, _B = 1.2, 0.75
_TEXT_SUFFIXES = (".md", ".markdown", ".txt")


@dataclass(frozen=True)
class Passage:
    url: str
    title: str
    text: str
    terms: Counter[str] = field(compare=False)


@dataclass(frozen=True)
class Scored:
    passage: Passage
    score: float


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class FolderCorpus:
    """Passages of every document under `directory`, read once, ranked with BM25."""

    def __init__(self, passages: list[Passage]) -> None:
        self._passages = passages
        self._average_length = sum(p.terms.total() for p in passages) / len(passages) if passages else 0.0
        frequencies: Counter[str] = Counter()
        for passage in passages:
            frequencies.update(passage.terms.keys())
        count = len(passages)
        self._idf = {term: math.log(1 + (count - n + 0.5) / (n + 0.5)) for term, n in frequencies.items()}

    @classmethod
    def load(cls, directory: Path) -> FolderCorpus:
        return cls([passage for document in _documents(directory) for passage in _passages(*document)])

    def __len__(self) -> int:
        return len(self._passages)

    def search(self, query: str) -> list[Scored]:
        """Every passage sharing a term with the query, best first."""
        terms = set(tokens(query)) & self._idf.keys()
        scored = [Scored(p, s) for p in self._passages if (s := self._bm25(p, terms)) > 0]
        scored.sort(key=lambda hit: hit.score, reverse=True)
        return scored

    def _bm25(self, passage: Passage, terms: set[str]) -> float:
        length_ratio = passage.terms.total() / self._average_length if self._average_length else 1.0
        score = 0.0
        for term in terms:
            frequency = passage.terms.get(term, 0)
            if frequency:
                score += self._idf[term] * frequency * (_K1 + 1) / (frequency + _K1 * (1 - _B + _B * length_ratio))
        return score


def _documents(directory: Path) -> Iterator[tuple[str, str, str]]:
    """(url, title, text) for every readable document; a document without a URL is skipped."""
    if not directory.is_dir():
        logger.warning("web search corpus %s is not a directory", directory)
        return
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        try:
            yield from _read(path)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            logger.warning("skipping corpus document %s: %s", path, exc)


def _read(path: Path) -> Iterator[tuple[str, str, str]]:
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES:
        document = _front_matter_document(path.read_text(encoding="utf-8"))
        entries: list[Any] = [document] if document else []
    elif suffix == ".json":
        loaded = json.loads(path.read_text(encoding="utf-8"))
        entries = loaded if isinstance(loaded, list) else [loaded]
    elif suffix == ".jsonl":
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        return
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str) and isinstance(entry.get("content"), str):
            yield entry["url"], str(entry.get("title") or entry["url"]), entry["content"]
        else:
            logger.warning("skipping a document in %s: it needs a url and content", path)


def _front_matter_document(text: str) -> dict[str, str] | None:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (line.strip() for line in lines[1:]):
        return None
    end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, separator, value = line.partition(":")
        if separator:
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return {**fields, "content": "\n".join(lines[end + 1:]).strip()}


def _passages(url: str, title: str, text: str) -> Iterator[Passage]:
    current: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        if current and sum(map(len, current)) + len(paragraph) > _PASSAGE_CHARS:
            yield _passage(url, title, "\n\n".join(current))
            current = []
        current.append(paragraph)
    if current:
        yield _passage(url, title, "\n\n".join(current))


def _passage(url: str, title: str, text: str) -> Passage:
    # The title counts as text of every passage: a query naming the page should find it.
    return Passage(url=url, title=title, text=text, terms=Counter(tokens(f"{title}\n{text}")))
