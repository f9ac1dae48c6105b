"""The vector store search box: one query run through the Vector Stores search in each ranking
mode, merged into one table of chunks with each mode's score and rank."""

from __future__ import annotations

from dataclasses import dataclass, field

from riposte.vectors.index import SearchMode
from riposte.vectors.service import SearchRequest, VectorStoreService

MODES = (SearchMode.VECTOR, SearchMode.KEYWORD, SearchMode.HYBRID)


@dataclass
class ComparedChunk:
    file_id: str
    filename: str
    chunk_index: int
    text: str
    # mode name -> (score, rank from 1); a mode that did not return the chunk is absent.
    by_mode: dict[str, tuple[float, int]] = field(default_factory=dict)

    def score(self, mode: str) -> str:
        found = self.by_mode.get(mode)
        return f"{found[0]:.4f} (#{found[1]})" if found else "—"


async def compare_modes(service: VectorStoreService, store_id: str, query: str, limit: int = 10) -> list[ComparedChunk]:
    chunks: dict[tuple[str, int], ComparedChunk] = {}
    for mode in MODES:
        hits = await service.search(store_id, SearchRequest(queries=[query], max_num_results=limit, mode=mode))
        for rank, hit in enumerate(hits, start=1):
            chunk = chunks.setdefault(hit.key(), ComparedChunk(hit.file_id, hit.filename, hit.chunk_index, hit.text))
            chunk.by_mode[mode.value] = (hit.score, rank)
    return sorted(chunks.values(), key=lambda c: min(rank for _, rank in c.by_mode.values()))
