"""The offline provider: searches a local corpus, never the network.

Its corpus is a folder of documents (`corpus.py`), a vector store of this server whose files carry
`url` and `title` attributes, or both. It serves every tool with `external_web_access: false`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from riposte.vectors.index import SearchHit, SearchMode
from riposte.vectors.service import SearchRequest
from riposte.websearch.corpus import FolderCorpus
from riposte.websearch.results import NOT_CONFIGURED, SearchQuery, WebResult, WebSearchError, within_domains


class StoreSearcher(Protocol):
    async def search(self, store_id: str, request: SearchRequest) -> list[SearchHit]: ...


class OfflineSearch:
    name = "offline"
    outbound = False

    def __init__(self, directory: Path | None, vector_store_id: str | None, searcher: StoreSearcher | None) -> None:
        self._directory = directory
        self._vector_store_id = vector_store_id
        self._searcher = searcher
        self._corpus: FolderCorpus | None = None
        self._loading = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self._directory is not None or self._vector_store_id is not None

    async def search(self, query: SearchQuery) -> list[WebResult]:
        if not self.configured:
            raise WebSearchError(NOT_CONFIGURED)
        found = [*await self._folder_results(query), *await self._store_results(query)]
        found.sort(key=lambda result: result.score or 0.0, reverse=True)
        best: dict[str, WebResult] = {}
        for result in found:
            if within_domains(result.url, query.allowed_domains):
                best.setdefault(result.url, result)
        return list(best.values())[: query.max_results]

    async def _folder_results(self, query: SearchQuery) -> list[WebResult]:
        if self._directory is None:
            return []
        corpus = await self._folder()
        hits = corpus.search(query.query)
        top = hits[0].score if hits else 1.0
        return [WebResult(url=hit.passage.url, title=hit.passage.title, content=hit.passage.text,
                          score=round(hit.score / top, 5)) for hit in hits]

    async def _folder(self) -> FolderCorpus:
        # Read once, off the event loop; later searches share it.
        async with self._loading:
            if self._corpus is None:
                assert self._directory is not None
                self._corpus = await asyncio.to_thread(FolderCorpus.load, self._directory)
            return self._corpus

    async def _store_results(self, query: SearchQuery) -> list[WebResult]:
        if self._vector_store_id is None or self._searcher is None:
            return []
        # Hybrid: search queries are keywords as often as sentences.
        request = SearchRequest(queries=[query.query], max_num_results=max(query.max_results * 3, 10),
                                mode=SearchMode.HYBRID)
        hits = await self._searcher.search(self._vector_store_id, request)
        return [WebResult(url=str(hit.attributes["url"]), title=str(hit.attributes.get("title") or hit.filename),
                          content=hit.text, score=round(hit.score, 5))
                for hit in hits if isinstance(hit.attributes.get("url"), str)]
