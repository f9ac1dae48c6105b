"""Uploaded files' metadata. The bytes live in the BlobStore."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema
from riposte.store.ownership import OwnedStore
from riposte.store.pagination import PageRequest, fetch_page


@dataclass(frozen=True)
class FileRecord:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None

    def as_object(self) -> dict[str, Any]:
        """The wire form, as the SDK's `FileObject` parses it."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass(frozen=True)
class FilePage:
    data: list[FileRecord]
    has_more: bool


_COLUMNS = (schema.files.c.id, schema.files.c.filename, schema.files.c.purpose, schema.files.c.bytes,
            schema.files.c.created_at, schema.files.c.expires_at)


class FileStore(OwnedStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: FileRecord) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(schema.files.insert().values(
                id=record.id, filename=record.filename, purpose=record.purpose, bytes=record.bytes,
                created_at=record.created_at, expires_at=record.expires_at, project=self._access.project,
            ))

    async def exists(self, file_id: str) -> bool:
        """In any project: ids are unique across projects."""
        async with self._engine.connect() as connection:
            found = (await connection.execute(select(schema.files.c.id).where(schema.files.c.id == file_id))).first()
        return found is not None

    async def get(self, file_id: str, now: int) -> FileRecord | None:
        """The file, unless it does not exist or has expired."""
        table = schema.files
        query = select(*_COLUMNS).where(table.c.id == file_id, _live(now), self._access.visible(table))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return FileRecord(*row) if row is not None else None

    async def list(self, page: PageRequest, purpose: str | None, now: int) -> FilePage:
        table = schema.files
        query = select(*_COLUMNS).where(_live(now), self._access.visible(table))
        if purpose is not None:
            query = query.where(table.c.purpose == purpose)
        async with self._engine.connect() as connection:
            found = await fetch_page(connection, table, query, table.c.id, page, [self._access.visible(table)])
        return FilePage(data=[FileRecord(*row) for row in found.rows], has_more=found.has_more)

    async def delete(self, file_id: str) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(schema.files).where(schema.files.c.id == file_id,
                                                                         self._access.visible(schema.files)))
        return bool(result.rowcount)

    async def stored_bytes(self, now: int) -> int:
        """The bytes of the owner's project's live files (its storage quota's use)."""
        table = schema.files
        query = select(func.coalesce(func.sum(table.c.bytes), 0)).where(
            _live(now), table.c.project == self._access.project)
        async with self._engine.connect() as connection:
            return int((await connection.execute(query)).scalar() or 0)

    async def expired_ids(self, now: int) -> Sequence[str]:
        table = schema.files
        query = select(table.c.id).where(table.c.expires_at.is_not(None), table.c.expires_at <= now)
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).scalars())


def _live(now: int) -> Any:
    table = schema.files
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)
