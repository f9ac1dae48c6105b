"""An upstream stream whose request goes out before its reader is ready for it.

A stored turn must commit its `in_progress` row before the client may see `response.created`,
and the upstream's first chunk may only be forwarded after that event. Sending the upstream
request only after the commit made the client wait for both, one after the other; `EarlyStart`
sends it at once and reads the stream in its own task, keeping the chunks, until the turn takes
the stream over: the client waits for the longer of the two instead of their sum, and nothing the
upstream sends can overtake `response.created`.

The chunks are read as they come rather than left in the socket because the HTTP client drops
what it holds unread when the connection then fails: an upstream that dies after a few chunks
must still leave those in the answer. The turn takes over between batches, after which it reads
the stream directly (no hand-off between tasks, nor a generator in between, per read).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator

from riposte.inference.upstream import ChunkBatch


class EarlyStart:
    def __init__(self, stream: AsyncGenerator[ChunkBatch]) -> None:
        self._stream = stream
        self._read: deque[ChunkBatch] = deque()
        self._taken_over = False
        self._reader = asyncio.create_task(self._read_until_taken_over())

    async def _read_until_taken_over(self) -> None:
        while not self._taken_over:
            try:
                batch = await anext(self._stream)
            except StopAsyncIteration:
                return
            self._read.append(batch)

    async def kept(self) -> AsyncGenerator[ChunkBatch]:
        """The chunks read before the turn took the stream over, as soon as each is read; call once,
        then read the stream itself, directly (one generator less between the turn and every
        later read). Errors of the request (connect, status, deadlines, a dropped connection)
        surface here after the chunks read before them, as they would have without the early
        start; a stream that ended is left ended."""
        while self._read or not self._reader.done():
            if self._read:
                yield self._read.popleft()
            else:
                # Nothing kept: stop the reader after the read it is waiting on.
                self._taken_over = True
                await asyncio.wait([self._reader])
        self._reader.result()  # its error, after the chunks it read

    async def aclose(self) -> None:
        """Stop the request if it is still going, and close the stream. Safe to call again."""
        if not self._reader.done():
            self._reader.cancel()
            await asyncio.wait([self._reader])
        if not self._reader.cancelled():
            self._reader.exception()  # seen here, so an error no one read is not logged as lost
        await self._stream.aclose()
