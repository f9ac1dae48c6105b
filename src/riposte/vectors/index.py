"""The vector index seam: what the vector store service needs, whatever stores the vectors.

Two implementations, checked by one contract test suite: sqlite-vec + FTS5 (sqlite_index.py) and
pgvector + PostgreSQL full-text search (pg_index.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from riposte.errors import RiposteError
from riposte.vectors.filters import Filter
from riposte.vectors.ranking import HybridWeights

Attributes = dict[str, str | int | float | bool]


class SearchMode(str, Enum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class IndexedFile:
    """What every chunk of one file carries, so filters can run inside the index query."""

    file_id: str
    filename: str
    attributes: Attributes
    metadata_token_count: int


@dataclass(frozen=True)
class EmbeddedChunk:
    index: int
    text: str
    token_count: int
    embedding: Sequence[float]


@dataclass(frozen=True)
class SearchQuery:
    text: str
    # None only for keyword search, which needs no embedding.
    embedding: Sequence[float] | None
    limit: int
    mode: SearchMode = SearchMode.VECTOR
    filters: Filter | None = None
    score_threshold: float = 0.0
    weights: HybridWeights = field(default_factory=HybridWeights)


@dataclass(frozen=True)
class SearchHit:
    file_id: str
    filename: str
    chunk_index: int
    text: str
    score: float
    attributes: Attributes
    token_count: int
    metadata_token_count: int

    def key(self) -> tuple[str, int]:
        return (self.file_id, self.chunk_index)


class IndexUnavailableError(RiposteError):
    """The index cannot serve requests (e.g. PostgreSQL without the pgvector extension)."""

    status_code = 503
    default_code = "vector_index_unavailable"


class VectorIndex(Protocol):
    name: str

    async def ensure_store(self, store_id: str, dimension: int) -> None:
        """Create the store's space if missing; idempotent."""
        ...

    async def drop_store(self, store_id: str) -> None: ...

    async def replace_file(self, store_id: str, file: IndexedFile, chunks: Sequence[EmbeddedChunk]) -> None:
        """Make `chunks` the file's only chunks in the store, atomically."""
        ...

    async def delete_file(self, store_id: str, file_id: str) -> None: ...

    async def update_attributes(self, store_id: str, file_id: str, attributes: Attributes) -> None: ...

    async def search(self, store_id: str, query: SearchQuery) -> list[SearchHit]:
        """Best first, at most `query.limit`, none scoring below `query.score_threshold`."""
        ...

    async def chunk_counts(self, store_id: str) -> dict[str, int]:
        """How many chunks each file of the store has in the index (the web inspector shows it)."""
        ...

    async def file_chunks(self, store_id: str, file_id: str) -> list[SearchHit]:
        """The file's chunks in the store, in order (score 0): what a citation of it points into."""
        ...

    async def aclose(self) -> None: ...


def hit_from_row(row: Sequence[Any], score: float, attributes: Attributes) -> SearchHit:
    """Rows are (file_id, filename, chunk_index, text, token_count, metadata_token_count)."""
    return SearchHit(file_id=row[0], filename=row[1], chunk_index=int(row[2]), text=row[3], score=score,
                     attributes=attributes, token_count=int(row[4]), metadata_token_count=int(row[5]))
