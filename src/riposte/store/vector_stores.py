"""Vector stores, their files and file batches: the SQL rows behind the Vector Stores API.

Counts (`file_counts`, `usage_bytes`) are aggregated from the file rows when read, so they can
never drift from the files' real statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema
from riposte.store.ownership import OwnedStore
from riposte.store.pagination import PageRequest, fetch_page

FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]
FILE_STATUSES: tuple[FileStatus, ...] = ("in_progress", "completed", "cancelled", "failed")


@dataclass(frozen=True)
class StoreRecord:
    id: str
    name: str
    description: str | None
    created_at: int
    last_active_at: int
    expires_after_days: int | None
    metadata: dict[str, str]
    embedding_model: str
    embedding_dimension: int | None


@dataclass(frozen=True)
class FileCounts:
    in_progress: int = 0
    completed: int = 0
    cancelled: int = 0
    failed: int = 0
    usage_bytes: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.cancelled + self.failed

    def as_object(self) -> dict[str, int]:
        return {"in_progress": self.in_progress, "completed": self.completed, "cancelled": self.cancelled,
                "failed": self.failed, "total": self.total}


@dataclass(frozen=True)
class StoreFileRecord:
    vector_store_id: str
    file_id: str
    batch_id: str | None
    created_at: int
    status: FileStatus
    last_error: dict[str, str] | None
    usage_bytes: int
    max_chunk_size_tokens: int
    chunk_overlap_tokens: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchRecord:
    id: str
    vector_store_id: str
    created_at: int
    cancelled: bool


@dataclass(frozen=True)
class RecordPage:
    data: list[Any]
    has_more: bool


_STORES = schema.vector_stores
_FILES = schema.vector_store_files
_BATCHES = schema.vector_store_file_batches
_STORE_COLUMNS = (_STORES.c.id, _STORES.c.name, _STORES.c.description, _STORES.c.created_at, _STORES.c.last_active_at,
                  _STORES.c.expires_after_days, _STORES.c.metadata, _STORES.c.embedding_model,
                  _STORES.c.embedding_dimension)
_FILE_COLUMNS = (_FILES.c.vector_store_id, _FILES.c.file_id, _FILES.c.batch_id, _FILES.c.created_at, _FILES.c.status,
                 _FILES.c.last_error, _FILES.c.usage_bytes, _FILES.c.max_chunk_size_tokens,
                 _FILES.c.chunk_overlap_tokens, _FILES.c.attributes)
_BATCH_COLUMNS = (_BATCHES.c.id, _BATCHES.c.vector_store_id, _BATCHES.c.created_at, _BATCHES.c.cancelled)


@dataclass(frozen=True)
class OrphanedFiles:
    """Files whose ingestion a dead instance left `in_progress`, now taken over or given up."""

    resumed: list[StoreFileRecord]
    failed: list[StoreFileRecord]


class VectorStoreRecords(OwnedStore):
    """Stores are owned by projects; their files and batches are reached only through a store the
    service has found for the caller first (VectorStoreService._store)."""

    def __init__(self, engine: AsyncEngine, owner: str | None = None) -> None:
        self._engine = engine
        # The server instance whose ingestions this writes (see store/instances.py).
        self._owner = owner

    # ------------------------------------------------------------------ stores

    async def insert_store(self, record: StoreRecord) -> None:
        async with self._engine.begin() as db:
            await db.execute(_STORES.insert().values(
                id=record.id, name=record.name, description=record.description, created_at=record.created_at,
                last_active_at=record.last_active_at, expires_after_days=record.expires_after_days,
                metadata=_dumps(record.metadata), embedding_model=record.embedding_model,
                embedding_dimension=record.embedding_dimension, project=self._access.project,
            ))

    async def store_exists(self, store_id: str) -> bool:
        """In any project: ids are unique across projects."""
        async with self._engine.connect() as db:
            return (await db.execute(select(_STORES.c.id).where(_STORES.c.id == store_id))).first() is not None

    async def get_store(self, store_id: str) -> StoreRecord | None:
        async with self._engine.connect() as db:
            query = select(*_STORE_COLUMNS).where(_STORES.c.id == store_id, self._access.visible(_STORES))
            row = (await db.execute(query)).first()
        return _store(row) if row is not None else None

    async def list_stores(self, page: PageRequest) -> RecordPage:
        async with self._engine.connect() as db:
            visible = self._access.visible(_STORES)
            found = await fetch_page(db, _STORES, select(*_STORE_COLUMNS).where(visible), _STORES.c.id, page,
                                     [visible])
        return RecordPage(data=[_store(row) for row in found.rows], has_more=found.has_more)

    async def update_store(self, store_id: str, values: dict[str, Any]) -> None:
        """`values` may hold name, expires_after_days, metadata and last_active_at."""
        if "metadata" in values:
            values = {**values, "metadata": _dumps(values["metadata"])}
        if values:
            async with self._engine.begin() as db:
                await db.execute(update(_STORES).where(_STORES.c.id == store_id, self._access.visible(_STORES))
                                 .values(**values))

    async def set_dimension(self, store_id: str, dimension: int) -> None:
        async with self._engine.begin() as db:
            await db.execute(update(_STORES).where(_STORES.c.id == store_id, _STORES.c.embedding_dimension.is_(None))
                             .values(embedding_dimension=dimension))

    async def delete_store(self, store_id: str) -> bool:
        async with self._engine.begin() as db:
            result = await db.execute(delete(_STORES).where(_STORES.c.id == store_id, self._access.visible(_STORES)))
            if result.rowcount:
                await db.execute(delete(_FILES).where(_FILES.c.vector_store_id == store_id))
                await db.execute(delete(_BATCHES).where(_BATCHES.c.vector_store_id == store_id))
        return bool(result.rowcount)

    async def counts(self, store_ids: Sequence[str]) -> dict[str, FileCounts]:
        return await self._counts(_FILES.c.vector_store_id, store_ids)

    async def batch_counts(self, batch_ids: Sequence[str]) -> dict[str, FileCounts]:
        return await self._counts(_FILES.c.batch_id, batch_ids)

    async def _counts(self, column: Any, keys: Sequence[str]) -> dict[str, FileCounts]:
        if not keys:
            return {}
        query = (select(column, _FILES.c.status, func.count(), func.coalesce(func.sum(_FILES.c.usage_bytes), 0))
                 .where(column.in_(list(keys))).group_by(column, _FILES.c.status))
        async with self._engine.connect() as db:
            rows = (await db.execute(query)).all()
        tallies: dict[str, dict[str, int]] = {key: {} for key in keys}
        for key, status, count, usage in rows:
            tally = tallies[key]
            tally[status] = int(count)
            tally["usage_bytes"] = tally.get("usage_bytes", 0) + int(usage)
        return {key: FileCounts(**{k: v for k, v in tally.items() if k in (*FILE_STATUSES, "usage_bytes")})
                for key, tally in tallies.items()}

    # ------------------------------------------------------------------ files in stores

    async def upsert_file(self, record: StoreFileRecord) -> None:
        """Attach a file, or re-attach it (which starts its ingestion over)."""
        values = {
            "batch_id": record.batch_id, "created_at": record.created_at, "status": record.status,
            "last_error": _dumps(record.last_error) if record.last_error else None,
            "usage_bytes": record.usage_bytes, "max_chunk_size_tokens": record.max_chunk_size_tokens,
            "chunk_overlap_tokens": record.chunk_overlap_tokens, "attributes": _dumps(record.attributes),
            "owner": self._owner, "attempts": 1,
        }
        async with self._engine.begin() as db:
            changed = await db.execute(update(_FILES).where(*_file_key(record.vector_store_id, record.file_id))
                                       .values(**values))
            if not changed.rowcount:
                await db.execute(_FILES.insert().values(vector_store_id=record.vector_store_id,
                                                        file_id=record.file_id, **values))

    async def get_file(self, store_id: str, file_id: str) -> StoreFileRecord | None:
        async with self._engine.connect() as db:
            row = (await db.execute(select(*_FILE_COLUMNS).where(*_file_key(store_id, file_id)))).first()
        return _store_file(row) if row is not None else None

    async def list_files(self, store_id: str, page: PageRequest, status: FileStatus | None = None,
                         batch_id: str | None = None) -> RecordPage:
        scope = [_FILES.c.vector_store_id == store_id]
        query = select(*_FILE_COLUMNS).where(*scope)
        if status is not None:
            query = query.where(_FILES.c.status == status)
        if batch_id is not None:
            query = query.where(_FILES.c.batch_id == batch_id)
        async with self._engine.connect() as db:
            found = await fetch_page(db, _FILES, query, _FILES.c.file_id, page, scope)
        return RecordPage(data=[_store_file(row) for row in found.rows], has_more=found.has_more)

    async def finish_file(self, store_id: str, file_id: str, status: FileStatus, usage_bytes: int,
                          last_error: dict[str, str] | None) -> bool:
        """Record an ingestion's outcome, unless the file was cancelled or re-attached meanwhile."""
        async with self._engine.begin() as db:
            result = await db.execute(
                update(_FILES).where(*_file_key(store_id, file_id), _FILES.c.status == "in_progress")
                .values(status=status, usage_bytes=usage_bytes, last_error=_dumps(last_error) if last_error else None))
        return bool(result.rowcount)

    async def take_over_orphans(self, dead_owners: Sequence[str], max_attempts: int,
                                last_error: dict[str, str]) -> OrphanedFiles:
        """Claim the `in_progress` files of dead or unregistered instances (or of a version that kept
        no owner) for this instance, to ingest again; fail those already started `max_attempts` times."""
        registered = select(schema.server_instances.c.id)
        orphaned = and_(_FILES.c.status == "in_progress",
                        or_(_FILES.c.owner.is_(None), _FILES.c.owner.in_(list(dead_owners)),
                            _FILES.c.owner.not_in(registered)))
        columns = (*_FILE_COLUMNS, _FILES.c.owner, _FILES.c.attempts)
        resumed: list[StoreFileRecord] = []
        failed: list[StoreFileRecord] = []
        async with self._engine.begin() as db:
            for row in (await db.execute(select(*columns).where(orphaned))).all():
                record, owner, attempts = _store_file(row), row[-2], int(row[-1])
                same_claim = (*_file_key(record.vector_store_id, record.file_id), _FILES.c.status == "in_progress",
                              _FILES.c.owner.is_(None) if owner is None else _FILES.c.owner == owner)
                if attempts < max_attempts:
                    claim = update(_FILES).where(*same_claim).values(owner=self._owner, attempts=attempts + 1)
                    if (await db.execute(claim)).rowcount:
                        resumed.append(record)
                    continue
                give_up = update(_FILES).where(*same_claim).values(status="failed", owner=None,
                                                                  last_error=_dumps(last_error))
                if (await db.execute(give_up)).rowcount:
                    failed.append(record)
        return OrphanedFiles(resumed=resumed, failed=failed)

    async def update_attributes(self, store_id: str, file_id: str, attributes: dict[str, Any]) -> None:
        async with self._engine.begin() as db:
            await db.execute(update(_FILES).where(*_file_key(store_id, file_id))
                             .values(attributes=_dumps(attributes)))

    async def delete_file(self, store_id: str, file_id: str) -> bool:
        async with self._engine.begin() as db:
            result = await db.execute(delete(_FILES).where(*_file_key(store_id, file_id)))
        return bool(result.rowcount)

    async def stores_holding(self, file_id: str) -> list[str]:
        async with self._engine.connect() as db:
            return list((await db.execute(select(_FILES.c.vector_store_id).where(_FILES.c.file_id == file_id)))
                        .scalars())

    # ------------------------------------------------------------------ batches

    async def insert_batch(self, batch: BatchRecord) -> None:
        async with self._engine.begin() as db:
            await db.execute(_BATCHES.insert().values(id=batch.id, vector_store_id=batch.vector_store_id,
                                                      created_at=batch.created_at, cancelled=batch.cancelled))

    async def batch_exists(self, batch_id: str) -> bool:
        """In any store: batch ids are unique across stores."""
        async with self._engine.connect() as db:
            return (await db.execute(select(_BATCHES.c.id).where(_BATCHES.c.id == batch_id))).first() is not None

    async def get_batch(self, store_id: str, batch_id: str) -> BatchRecord | None:
        query = select(*_BATCH_COLUMNS).where(_BATCHES.c.id == batch_id, _BATCHES.c.vector_store_id == store_id)
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        return BatchRecord(id=row[0], vector_store_id=row[1], created_at=int(row[2]), cancelled=bool(row[3])) \
            if row is not None else None

    async def cancel_batch(self, batch_id: str) -> list[str]:
        """Mark the batch cancelled and its unfinished files cancelled; returns those files' ids."""
        unfinished = and_(_FILES.c.batch_id == batch_id, _FILES.c.status == "in_progress")
        async with self._engine.begin() as db:
            await db.execute(update(_BATCHES).where(_BATCHES.c.id == batch_id).values(cancelled=True))
            file_ids = list((await db.execute(select(_FILES.c.file_id).where(unfinished))).scalars())
            await db.execute(update(_FILES).where(unfinished).values(status="cancelled"))
        return file_ids


def _file_key(store_id: str, file_id: str) -> tuple[Any, Any]:
    return (_FILES.c.vector_store_id == store_id, _FILES.c.file_id == file_id)


def _store(row: Any) -> StoreRecord:
    return StoreRecord(id=row[0], name=row[1], description=row[2], created_at=int(row[3]),
                       last_active_at=int(row[4]), expires_after_days=row[5], metadata=orjson.loads(row[6]),
                       embedding_model=row[7], embedding_dimension=row[8])


def _store_file(row: Any) -> StoreFileRecord:
    return StoreFileRecord(vector_store_id=row[0], file_id=row[1], batch_id=row[2], created_at=int(row[3]),
                           status=row[4], last_error=orjson.loads(row[5]) if row[5] else None,
                           usage_bytes=int(row[6]), max_chunk_size_tokens=int(row[7]),
                           chunk_overlap_tokens=int(row[8]), attributes=orjson.loads(row[9]))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
