"""Wire forms of vector stores, their files, batches and search results (pure; SDK-shaped)."""

from __future__ import annotations

from typing import Any

from riposte.store.vector_stores import BatchRecord, FileCounts, StoreFileRecord, StoreRecord
from riposte.vectors.chunking import ChunkingStrategy
from riposte.vectors.index import SearchHit

DAY = 24 * 3600


def expires_at(store: StoreRecord) -> int | None:
    if store.expires_after_days is None:
        return None
    return store.last_active_at + store.expires_after_days * DAY


def is_expired(store: StoreRecord, now: int) -> bool:
    deadline = expires_at(store)
    return deadline is not None and deadline <= now


def store_object(store: StoreRecord, counts: FileCounts, now: int) -> dict[str, Any]:
    """As the SDK's `VectorStore`, plus the extension fields `embedding_model` and `embedding_dimension`."""
    status = _store_status(store, counts, now)
    expiry = {"anchor": "last_active_at", "days": store.expires_after_days} \
        if store.expires_after_days is not None else None
    return {
        "id": store.id,
        "object": "vector_store",
        "created_at": store.created_at,
        "name": store.name,
        "description": store.description,
        "usage_bytes": counts.usage_bytes,
        "file_counts": counts.as_object(),
        "status": status,
        "expires_after": expiry,
        "expires_at": expires_at(store),
        "last_active_at": store.last_active_at,
        "metadata": store.metadata,
        "embedding_model": store.embedding_model,
        "embedding_dimension": store.embedding_dimension,
    }


def _store_status(store: StoreRecord, counts: FileCounts, now: int) -> str:
    if is_expired(store, now):
        return "expired"
    return "in_progress" if counts.in_progress else "completed"


def store_file_object(record: StoreFileRecord) -> dict[str, Any]:
    """As the SDK's `VectorStoreFile`."""
    strategy = ChunkingStrategy(record.max_chunk_size_tokens, record.chunk_overlap_tokens)
    return {
        "id": record.file_id,
        "object": "vector_store.file",
        "created_at": record.created_at,
        "vector_store_id": record.vector_store_id,
        "status": record.status,
        "last_error": record.last_error,
        "usage_bytes": record.usage_bytes,
        "chunking_strategy": strategy.as_object(),
        "attributes": record.attributes,
    }


def batch_object(batch: BatchRecord, counts: FileCounts) -> dict[str, Any]:
    """As the SDK's `VectorStoreFileBatch`."""
    if batch.cancelled:
        status = "cancelled"
    elif counts.in_progress:
        status = "in_progress"
    elif counts.total and counts.failed == counts.total:
        status = "failed"
    else:
        status = "completed"
    return {
        "id": batch.id,
        "object": "vector_store.files_batch",
        "created_at": batch.created_at,
        "vector_store_id": batch.vector_store_id,
        "status": status,
        "file_counts": counts.as_object(),
    }


def search_result_object(hit: SearchHit) -> dict[str, Any]:
    """As the SDK's `VectorStoreSearchResponse`."""
    return {
        "file_id": hit.file_id,
        "filename": hit.filename,
        "score": hit.score,
        "attributes": hit.attributes,
        "content": [{"type": "text", "text": hit.text}],
    }


def search_page(queries: list[str], hits: list[SearchHit]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": [search_result_object(hit) for hit in hits],
        "has_more": False,
        "next_page": None,
    }
