"""The Vector Stores API's domain: stores, attached files, batches and search."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from riposte import ids
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.files.service import FileService
from riposte.store.ownership import Owner
from riposte.store.pagination import PageRequest
from riposte.store.vector_stores import (
    BatchRecord,
    FileCounts,
    FileStatus,
    StoreFileRecord,
    StoreRecord,
    VectorStoreRecords,
)
from riposte.vectors import objects
from riposte.vectors.chunking import AUTO, ChunkingStrategy
from riposte.vectors.embeddings import LOCAL_MODELS, EmbeddingModels
from riposte.vectors.extract import ExtractionError, extract_text
from riposte.vectors.filters import Filter
from riposte.vectors.index import Attributes, SearchHit, SearchMode, SearchQuery, VectorIndex
from riposte.vectors.ingest import Ingestion, IngestJob
from riposte.vectors.ranking import HybridWeights

MAX_BATCH_FILES = 2000
# Searches refresh a store's last_active_at (its expiry anchor) at most this often, sparing a
# database write per search; expiry is counted in days.
_ACTIVITY_GRANULARITY_SECONDS = 60


@dataclass(frozen=True)
class NewStore:
    name: str
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    expires_after_days: int | None = None
    embedding_model: str | None = None
    embedding_dimension: int | None = None
    file_ids: Sequence[str] = ()
    strategy: ChunkingStrategy = AUTO


@dataclass(frozen=True)
class Attachment:
    file_id: str
    attributes: Attributes = field(default_factory=dict)
    strategy: ChunkingStrategy = AUTO


@dataclass(frozen=True)
class SearchRequest:
    """One search of one store. `queries` holds one or more query strings."""

    queries: Sequence[str]
    max_num_results: int = 10
    filters: Filter | None = None
    score_threshold: float = 0.0
    mode: SearchMode = SearchMode.VECTOR
    weights: HybridWeights = field(default_factory=HybridWeights)


class VectorStoreService:
    def __init__(self, records: VectorStoreRecords, files: FileService, index: VectorIndex, models: EmbeddingModels,
                 ingestion: Ingestion, clock: Callable[[], float] = time.time) -> None:
        self._records = records
        self._files = files
        self.index = index
        self._models = models
        self.ingestion = ingestion
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def owned_by(self, owner: Owner) -> VectorStoreService:
        """The same service over the owner's stores and files only; ingestion stays server-wide."""
        view = copy.copy(self)
        view._records = self._records.owned_by(owner)
        view._files = self._files.owned_by(owner)
        return view

    # ------------------------------------------------------------------ stores

    async def create_store(self, new: NewStore) -> dict[str, Any]:
        model, dimension = self._models.choose(new.embedding_model, new.embedding_dimension)
        for index, file_id in enumerate(new.file_ids):
            await self._require_file(file_id, f"file_ids[{index}]")
        now = self._now()
        store = StoreRecord(id=await self._unused_store_id(), name=new.name, description=new.description,
                            created_at=now, last_active_at=now, expires_after_days=new.expires_after_days,
                            metadata=new.metadata, embedding_model=model, embedding_dimension=dimension)
        await self._records.insert_store(store)
        for file_id in new.file_ids:
            await self._attach(store.id, Attachment(file_id=file_id, strategy=new.strategy), batch_id=None)
        return await self.retrieve_store(store.id)

    async def _unused_store_id(self) -> str:
        return await ids.unused_scoped_id(ids.ScopedKind.VECTOR_STORE, self._records.store_exists)

    async def retrieve_store(self, store_id: str) -> dict[str, Any]:
        store = await self._store(store_id)
        return objects.store_object(store, await self._counts(store_id), self._now())

    async def list_stores(self, page: PageRequest) -> tuple[list[dict[str, Any]], bool]:
        found = await self._records.list_stores(page)
        counts = await self._records.counts([store.id for store in found.data])
        now = self._now()
        return [objects.store_object(store, counts.get(store.id, FileCounts()), now) for store in found.data], \
            found.has_more

    async def update_store(self, store_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes` may hold name, metadata and expires_after_days (None removes the expiry)."""
        await self._store(store_id)
        await self._records.update_store(store_id, {**changes, "last_active_at": self._now()})
        return await self.retrieve_store(store_id)

    async def delete_store(self, store_id: str) -> None:
        await self._store(store_id)
        await self.ingestion.cancel_store(store_id)
        await self._records.delete_store(store_id)
        await self.index.drop_store(store_id)

    async def require_store(self, store_id: str) -> None:
        """A 404 unless the caller's project has this store (another project's answers the same)."""
        await self._store(store_id)

    async def _store(self, store_id: str) -> StoreRecord:
        store = await self._records.get_store(store_id)
        if store is None:
            raise NotFoundError(f"No vector store with id '{store_id}' found.", param="vector_store_id")
        return store

    async def _counts(self, store_id: str) -> FileCounts:
        return (await self._records.counts([store_id])).get(store_id, FileCounts())

    # ------------------------------------------------------------------ files in a store

    async def attach_file(self, store_id: str, attachment: Attachment) -> dict[str, Any]:
        await self._store(store_id)
        await self._require_file(attachment.file_id, "file_id")
        return objects.store_file_object(await self._attach(store_id, attachment, batch_id=None))

    async def _attach(self, store_id: str, attachment: Attachment, batch_id: str | None) -> StoreFileRecord:
        strategy = attachment.strategy
        record = StoreFileRecord(
            vector_store_id=store_id, file_id=attachment.file_id, batch_id=batch_id, created_at=self._now(),
            status="in_progress", last_error=None, usage_bytes=0, max_chunk_size_tokens=strategy.max_chunk_size_tokens,
            chunk_overlap_tokens=strategy.chunk_overlap_tokens, attributes=attachment.attributes,
        )
        await self.ingestion.cancel(store_id, attachment.file_id)
        await self._records.upsert_file(record)
        await self._records.update_store(store_id, {"last_active_at": self._now()})
        await self.ingestion.start(IngestJob(store_id=store_id, file_id=attachment.file_id, strategy=strategy,
                                             attributes=attachment.attributes))
        return record

    async def retrieve_file(self, store_id: str, file_id: str) -> dict[str, Any]:
        return objects.store_file_object(await self._store_file(store_id, file_id))

    async def list_files(self, store_id: str, page: PageRequest, status: FileStatus | None = None,
                         batch_id: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        await self._store(store_id)
        found = await self._records.list_files(store_id, page, status, batch_id)
        return [objects.store_file_object(record) for record in found.data], found.has_more

    async def update_file_attributes(self, store_id: str, file_id: str, attributes: Attributes) -> dict[str, Any]:
        await self._store_file(store_id, file_id)
        await self._records.update_attributes(store_id, file_id, attributes)
        await self.index.update_attributes(store_id, file_id, attributes)
        return await self.retrieve_file(store_id, file_id)

    async def detach_file(self, store_id: str, file_id: str) -> None:
        await self._store_file(store_id, file_id)
        await self.ingestion.cancel(store_id, file_id)
        await self._records.delete_file(store_id, file_id)
        await self.index.delete_file(store_id, file_id)

    async def detach_everywhere(self, file_id: str) -> None:
        """A deleted file leaves every vector store, as OpenAI's file deletion does."""
        for store_id in await self._records.stores_holding(file_id):
            await self.detach_file(store_id, file_id)

    async def file_content(self, store_id: str, file_id: str) -> list[dict[str, str]]:
        """The file's parsed text, as `FileContentResponse` parts."""
        await self._store_file(store_id, file_id)
        record, data = await self._files.read(file_id)
        try:
            text = await asyncio.to_thread(extract_text, record.filename, data)
        except ExtractionError:
            return []
        return [{"type": "text", "text": text}]

    async def _store_file(self, store_id: str, file_id: str) -> StoreFileRecord:
        await self._store(store_id)
        record = await self._records.get_file(store_id, file_id)
        if record is None:
            raise NotFoundError(f"No file '{file_id}' in vector store '{store_id}'.", param="file_id")
        return record

    async def _require_file(self, file_id: str, param: str) -> None:
        try:
            await self._files.get(file_id)
        except NotFoundError as exc:
            raise NotFoundError(f"No file with id '{file_id}' found.", param=param) from exc

    # ------------------------------------------------------------------ batches

    async def create_batch(self, store_id: str, attachments: Sequence[Attachment]) -> dict[str, Any]:
        await self._store(store_id)
        if not attachments or len(attachments) > MAX_BATCH_FILES:
            raise InvalidRequestError(f"A batch needs between 1 and {MAX_BATCH_FILES} files.", param="file_ids")
        for index, attachment in enumerate(attachments):
            await self._require_file(attachment.file_id, f"file_ids[{index}]")
        batch_id = await ids.unused_scoped_id(ids.ScopedKind.FILE_BATCH, self._records.batch_exists)
        batch = BatchRecord(id=batch_id, vector_store_id=store_id, created_at=self._now(), cancelled=False)
        await self._records.insert_batch(batch)
        for attachment in attachments:
            await self._attach(store_id, attachment, batch_id=batch.id)
        return await self.retrieve_batch(store_id, batch.id)

    async def retrieve_batch(self, store_id: str, batch_id: str) -> dict[str, Any]:
        batch = await self._batch(store_id, batch_id)
        counts = (await self._records.batch_counts([batch_id])).get(batch_id, FileCounts())
        return objects.batch_object(batch, counts)

    async def cancel_batch(self, store_id: str, batch_id: str) -> dict[str, Any]:
        await self._batch(store_id, batch_id)
        for file_id in await self._records.cancel_batch(batch_id):
            await self.ingestion.cancel(store_id, file_id)
            await self.index.delete_file(store_id, file_id)
        return await self.retrieve_batch(store_id, batch_id)

    async def _batch(self, store_id: str, batch_id: str) -> BatchRecord:
        await self._store(store_id)
        batch = await self._records.get_batch(store_id, batch_id)
        if batch is None:
            raise NotFoundError(f"No file batch '{batch_id}' in vector store '{store_id}'.", param="batch_id")
        return batch

    # ------------------------------------------------------------------ search

    async def search(self, store_id: str, request: SearchRequest) -> list[SearchHit]:
        """The store's best chunks for the queries, best first. A 4xx for a missing or expired store."""
        store = await self._store(store_id)
        if objects.is_expired(store, self._now()):
            raise InvalidRequestError(f"Vector store '{store_id}' has expired.", param="vector_store_id",
                                      code="vector_store_expired")
        if self._now() - store.last_active_at >= _ACTIVITY_GRANULARITY_SECONDS:
            await self._records.update_store(store_id, {"last_active_at": self._now()})
        embedder = self._models.embedder(store.embedding_model, store.embedding_dimension)
        hits: dict[tuple[str, int], SearchHit] = {}
        for text in request.queries:
            embedding = None if request.mode is SearchMode.KEYWORD else (await embedder.embed([text]))[0]
            query = SearchQuery(text=text, embedding=embedding, limit=request.max_num_results, mode=request.mode,
                                filters=request.filters, score_threshold=request.score_threshold,
                                weights=request.weights)
            for hit in await self.index.search(store_id, query):
                best = hits.get(hit.key())
                if best is None or hit.score > best.score:
                    hits[hit.key()] = hit
        ranked = sorted(hits.values(), key=lambda hit: hit.score, reverse=True)
        return ranked[: request.max_num_results]

    async def chunk_counts(self, store_id: str) -> dict[str, int]:
        """file id -> chunks indexed, for the store's files (the web inspector's view)."""
        await self._store(store_id)
        return await self.index.chunk_counts(store_id)

    async def stores_holding(self, file_id: str) -> list[str]:
        """The ids of the stores the file is attached to; a 404 unless the file is the caller's."""
        await self._files.get(file_id)
        return await self._records.stores_holding(file_id)

    async def file_chunks(self, store_id: str, file_id: str) -> list[SearchHit]:
        """The file's indexed chunks in the store, in order (the web inspector's view)."""
        await self._store_file(store_id, file_id)
        return await self.index.file_chunks(store_id, file_id)

    async def warm_up(self) -> bool:
        """Load the local embedding model now if a store uses it, so the first search after a
        restart does not wait for it (about 10 s cold). True when a model was loaded."""
        page = await self._records.list_stores(PageRequest(limit=100))
        local = {record.embedding_model for record in page.data} & LOCAL_MODELS.keys()
        for model in local:
            await self._models.embedder(model, None).embed(["warm-up"])
        return bool(local)

    async def aclose(self) -> None:
        await self.ingestion.aclose()
        await self.index.aclose()
