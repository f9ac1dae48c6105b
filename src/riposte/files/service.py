"""Uploading, reading and deleting files: metadata in SQL, bytes on disk."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import PurePosixPath, PureWindowsPath

from riposte import ids
from riposte.errors import InvalidRequestError, NotFoundError, RateLimitError
from riposte.store.blobs import BlobStore
from riposte.store.files import FilePage, FileRecord, FileStore
from riposte.store.ownership import Owner
from riposte.store.pagination import PageRequest

# The purposes the create endpoint accepts (the SDK's `FilePurpose`).
PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 30 * 24 * 3600
_MAX_FILENAME = 512


class FileService:
    def __init__(self, store: FileStore, blobs: BlobStore, max_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._blobs = blobs
        self.max_bytes = max_bytes
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def owned_by(self, owner: Owner) -> FileService:
        """The same service over the owner's files only."""
        view = copy.copy(self)
        view._store = self._store.owned_by(owner)
        return view

    async def upload(self, filename: str, purpose: str, content: AsyncIterator[bytes],
                     expires_after_seconds: int | None = None, quota_bytes: int | None = None) -> FileRecord:
        """`quota_bytes`: what the owner's project may hold in all; beyond it the upload is a 429."""
        check_purpose(purpose)
        check_expiry(expires_after_seconds)
        file_id = await self._unused_id()
        size = await self._blobs.write(file_id, content, self.max_bytes)
        now = self._now()
        record = FileRecord(
            id=file_id, filename=clean_filename(filename), purpose=purpose, bytes=size, created_at=now,
            expires_at=now + expires_after_seconds if expires_after_seconds is not None else None,
        )
        try:
            if quota_bytes is not None:
                await self._check_quota(size, quota_bytes)
            await self._store.insert(record)
        except BaseException:
            await self._blobs.delete(file_id)
            raise
        return record

    async def _check_quota(self, size: int, quota_bytes: int) -> None:
        used = await self._store.stored_bytes(self._now())
        if used + size > quota_bytes:
            # Waiting frees nothing by itself; an hour is a hint to delete files or raise the quota.
            raise RateLimitError(
                f"This upload of {size} bytes would exceed the project's file storage quota of {quota_bytes} bytes "
                f"({used} in use).", retry_after=3600, param="file",
            )

    async def _unused_id(self) -> str:
        return await ids.unused_scoped_id(ids.ScopedKind.FILE, self._store.exists)

    async def get(self, file_id: str) -> FileRecord:
        record = await self._store.get(file_id, self._now())
        if record is None:
            raise NotFoundError(f"No file with id '{file_id}' found.", param="file_id")
        return record

    async def read(self, file_id: str) -> tuple[FileRecord, bytes]:
        record = await self.get(file_id)
        return record, await self._blobs.read(file_id)

    async def content(self, file_id: str) -> tuple[FileRecord, AsyncIterator[bytes]]:
        record = await self.get(file_id)
        return record, self._blobs.iterate(file_id)

    async def list(self, page: PageRequest, purpose: str | None = None) -> FilePage:
        return await self._store.list(page, purpose, self._now())

    async def delete(self, file_id: str, before_delete: Callable[[str], Awaitable[None]] | None = None) -> None:
        """Delete the file; `before_delete` runs first (e.g. to detach it from vector stores)."""
        await self.get(file_id)
        if before_delete is not None:
            await before_delete(file_id)
        await self._store.delete(file_id)
        await self._blobs.delete(file_id)

    async def purge_expired(self) -> int:
        expired = await self._store.expired_ids(self._now())
        for file_id in expired:
            await self._store.delete(file_id)
            await self._blobs.delete(file_id)
        return len(expired)


def check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidRequestError(
            f"Invalid value for 'purpose': '{purpose}'. Supported values are: {', '.join(sorted(PURPOSES))}.",
            param="purpose", code="invalid_value",
        )


def check_expiry(seconds: int | None) -> None:
    if seconds is not None and not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise InvalidRequestError(
            f"expires_after[seconds] must be between {MIN_EXPIRY_SECONDS} and {MAX_EXPIRY_SECONDS}.",
            param="expires_after[seconds]", code="invalid_value",
        )


def clean_filename(filename: str) -> str:
    """The client's name without any directory part; it is only ever shown, never used as a path."""
    name = PureWindowsPath(PurePosixPath(filename).name).name.strip()
    return (name or "upload")[:_MAX_FILENAME]
