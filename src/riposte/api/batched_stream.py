"""A streaming response that sends everything ready at the same moment in one socket write.

A producer task pulls items from an async generator, encodes them and queues the bytes; the
response's own task sends whatever is queued each time it runs. When one upstream read carries
many tokens, their events leave in a few writes instead of one each (a write wakes the client,
which costs more than building the event); when tokens trickle in, each event still leaves as
soon as the producer waits for the next one. The producer pauses once a batch is full, so a slow
client slows the upstream read instead of growing memory. Batches start at `FIRST_BATCH` items,
room for the opening events so that the turn goes on to call the upstream while they are being
written, and double up to `MAX_BATCH`, so the first delta of a large burst is not held back
behind the rest of it. The last batch carries the end of the body, saving a write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Generic, TypeVar

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from riposte.observability.metrics import ACTIVE_STREAMS

FIRST_BATCH = 4
MAX_BATCH = 128

Item = TypeVar("Item")


class _Outbox:
    # asyncio's events, which can be cleared: anyio's are one-shot, and making a new one looks the
    # async backend up again, a cost paid per token. The server runs on asyncio (uvicorn).
    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._closed = False
        self._filled = asyncio.Event()
        self._taken = asyncio.Event()
        self._batch = FIRST_BATCH

    async def put(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        if len(self._pending) == 1:  # the writer waits only on an empty queue
            self._filled.set()
        if len(self._pending) >= self._batch:
            self._batch = min(self._batch * 2, MAX_BATCH)
            self._taken.clear()
            await self._taken.wait()

    def close(self, trailer: bytes) -> None:
        if trailer:
            self._pending.append(trailer)
        self._closed = True
        self._filled.set()

    async def take(self) -> tuple[bytes, bool]:
        """Everything queued, joined, and whether that is the end of the stream."""
        while not self._pending and not self._closed:
            self._filled.clear()
            await self._filled.wait()
        batch = b"".join(self._pending)
        self._pending.clear()
        self._taken.set()
        return batch, self._closed


class BatchedStreamingResponse(Response, Generic[Item]):
    """An HTTP streaming response of `encode(item)` for each item, then `trailer` if the generator
    ran to its end. A client that goes away cancels the generator (closing it) and the writes."""

    def __init__(self, items: AsyncGenerator[Item], encode: Callable[[Item], bytes], *, trailer: bytes,
                 media_type: str, headers: dict[str, str]) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self._items = items
        self._encode = encode
        self._trailer = trailer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with ACTIVE_STREAMS.track_inprogress():
            await self._stream(receive, send)

    async def _stream(self, receive: Receive, send: Send) -> None:
        outbox = _Outbox()
        async with anyio.create_task_group() as group:
            group.start_soon(self._produce, outbox)
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            last = False
            while not last:
                batch, last = await outbox.take()
                await send({"type": "http.response.body", "body": batch, "more_body": not last})
            group.cancel_scope.cancel()  # the disconnect watcher; the producer has finished

    async def _produce(self, outbox: _Outbox) -> None:
        trailer = b""
        try:
            # Closed here, not left to the garbage collector, so a cancelled turn cleans up at once.
            async with aclosing(self._items) as items:
                async for item in items:
                    await outbox.put(self._encode(item))
            trailer = self._trailer
        finally:
            outbox.close(trailer)


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
