"""Background ingestion: file bytes → text → token chunks → embeddings → the index.

Each attached file gets one task. A file attached again, detached, or cancelled has its task
cancelled first, so an older run can never overwrite a newer one. Tasks inherit the context of
the request that attached the file, replay scope included, so their embedding calls replay.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio

from riposte.errors import NotFoundError, RiposteError
from riposte.files.service import FileService
from riposte.observability.metrics import INGESTION_FILES, INGESTION_QUEUE
from riposte.store.vector_stores import FileStatus, StoreFileRecord, VectorStoreRecords
from riposte.vectors.chunking import ChunkingStrategy, TextChunk, chunk_text, count_tokens
from riposte.vectors.embeddings import EmbeddingError, EmbeddingModels
from riposte.vectors.extract import ExtractionError, extract_text, is_costly
from riposte.vectors.extraction_worker import ExtractionLimits, extract_in_worker
from riposte.vectors.index import Attributes, EmbeddedChunk, IndexedFile, IndexUnavailableError, VectorIndex

logger = logging.getLogger(__name__)
_Key = tuple[str, str]


@dataclass(frozen=True)
class IngestJob:
    store_id: str
    file_id: str
    strategy: ChunkingStrategy
    attributes: Attributes


@dataclass(frozen=True)
class Outcome:
    status: FileStatus
    usage_bytes: int = 0
    last_error: dict[str, str] | None = None


def metadata_token_count(attributes: Attributes, filename: str) -> int:
    """Tokens in the chunk metadata as the seed system counted them: the repr of attributes + filename."""
    return count_tokens(str({**attributes, "filename": filename}))


class Ingestion:
    def __init__(self, files: FileService, records: VectorStoreRecords, index: VectorIndex, models: EmbeddingModels,
                 concurrency: int, extraction_limits: ExtractionLimits) -> None:
        self._files = files
        self._extraction_limits = extraction_limits
        self._records = records
        self._index = index
        self._models = models
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[_Key, asyncio.Task[None]] = {}

    async def start(self, job: IngestJob) -> None:
        key = (job.store_id, job.file_id)
        await self.cancel(*key)
        task = asyncio.create_task(self._run(job), name=f"ingest {job.file_id} into {job.store_id}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    async def resume(self, records: list[StoreFileRecord]) -> None:
        """Ingest again files whose ingestion a dead server left unfinished (the index write replaces
        whatever part of them it had written)."""
        for record in records:
            strategy = ChunkingStrategy(max_chunk_size_tokens=record.max_chunk_size_tokens,
                                        chunk_overlap_tokens=record.chunk_overlap_tokens)
            await self.start(IngestJob(store_id=record.vector_store_id, file_id=record.file_id, strategy=strategy,
                                       attributes=record.attributes))

    def _forget(self, key: _Key, done: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is done:
            del self._tasks[key]

    async def cancel(self, store_id: str, file_id: str) -> None:
        task = self._tasks.get((store_id, file_id))
        if task is not None:
            task.cancel()
            # Waits until a running index write has finished, so later cleanup sees its result.
            await asyncio.gather(task, return_exceptions=True)

    async def cancel_store(self, store_id: str) -> None:
        for key in [key for key in self._tasks if key[0] == store_id]:
            await self.cancel(*key)

    async def wait_idle(self) -> None:
        """For tests and benchmarks: until every started ingestion has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def aclose(self) -> None:
        running = list(self._tasks)
        for key in running:
            await self.cancel(*key)
        for store_id, file_id in running:
            await self._records.finish_file(store_id, file_id, "failed", 0, {
                "code": "server_error", "message": "Ingestion was interrupted by a server shutdown; attach the "
                                                   "file again."})

    async def _run(self, job: IngestJob) -> None:
        with INGESTION_QUEUE.track_inprogress():
            async with self._slots:
                outcome = await self._outcome(job)
        INGESTION_FILES.labels(outcome.status).inc()
        await self._records.finish_file(job.store_id, job.file_id, outcome.status, outcome.usage_bytes,
                                        outcome.last_error)

    async def _outcome(self, job: IngestJob) -> Outcome:
        try:
            return await self._ingest(job)
        except ExtractionError as exc:
            return _failed(exc.code, exc.message)
        except NotFoundError:
            return _failed("invalid_file", "The file was deleted before it could be processed.")
        except (EmbeddingError, IndexUnavailableError, ValueError) as exc:
            return _failed("server_error", str(exc))
        except RiposteError as exc:
            return _failed("server_error", exc.message)
        except Exception:
            logger.exception("ingesting %s into %s failed", job.file_id, job.store_id)
            return _failed("server_error", "An internal error occurred while processing the file.")

    async def _ingest(self, job: IngestJob) -> Outcome:
        store = await self._records.get_store(job.store_id)
        if store is None:
            return _failed("server_error", "The vector store was deleted.")
        record, data = await self._files.read(job.file_id)
        text = await self._extract(record.filename, data)
        chunks = await anyio.to_thread.run_sync(chunk_text, text, job.strategy)
        if not chunks:
            raise ExtractionError("invalid_file", "The file contains no text to index.")
        embedder = self._models.embedder(store.embedding_model, store.embedding_dimension)
        vectors = await embedder.embed([chunk.text for chunk in chunks])
        dimension = store.embedding_dimension or len(vectors[0])
        await self._index.ensure_store(job.store_id, dimension)
        if store.embedding_dimension is None:
            await self._records.set_dimension(job.store_id, dimension)
        indexed = IndexedFile(file_id=job.file_id, filename=record.filename, attributes=job.attributes,
                              metadata_token_count=metadata_token_count(job.attributes, record.filename))
        await self._index.replace_file(job.store_id, indexed, _embedded(chunks, vectors))
        return Outcome(status="completed", usage_bytes=_usage_bytes(chunks, dimension))


    async def _extract(self, filename: str, data: bytes) -> str:
        if is_costly(filename, data):
            return await extract_in_worker(filename, data, self._extraction_limits)
        return await anyio.to_thread.run_sync(extract_text, filename, data)


def _embedded(chunks: list[TextChunk], vectors: list[list[float]]) -> list[EmbeddedChunk]:
    return [EmbeddedChunk(index=chunk.index, text=chunk.text, token_count=chunk.token_count, embedding=vector)
            for chunk, vector in zip(chunks, vectors, strict=True)]


def _usage_bytes(chunks: list[TextChunk], dimension: int) -> int:
    """What the store holds for the file: chunk text plus float32 vectors."""
    return sum(len(chunk.text.encode()) + 4 * dimension for chunk in chunks)


def _failed(code: str, message: str) -> Outcome:
    return Outcome(status="failed", last_error={"code": code, "message": message})
