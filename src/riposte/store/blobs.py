"""File contents on disk, one file per id under `<data_dir>/files/`.

Names are the server's own generated ids, never a client's filename, so a path cannot escape
the directory. An id is still checked against a strict pattern before it is turned into a path.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from riposte.errors import PayloadTooLargeError

_SAFE_ID = re.compile(r"^file-[A-Za-z0-9_-]{1,96}$")
_COPY_CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, file_id: str) -> Path:
        if not _SAFE_ID.match(file_id):
            raise ValueError(f"not a file id: {file_id!r}")
        return self.directory / file_id

    async def write(self, file_id: str, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
        """Stream `chunks` to the blob; raise PayloadTooLargeError past `max_bytes`. Returns the size."""
        target = self.path(file_id)
        await anyio.to_thread.run_sync(lambda: self.directory.mkdir(parents=True, exist_ok=True))
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLargeError(
                            f"The file exceeds the upload limit of {max_bytes} bytes.", param="file"
                        )
                    await anyio.to_thread.run_sync(out.write, chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size

    async def read(self, file_id: str) -> bytes:
        return await anyio.to_thread.run_sync(self.path(file_id).read_bytes)

    async def iterate(self, file_id: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(file_id), "rb") as source:
            while chunk := await source.read(_COPY_CHUNK):
                yield chunk

    async def delete(self, file_id: str) -> None:
        await anyio.to_thread.run_sync(lambda: self.path(file_id).unlink(missing_ok=True))
