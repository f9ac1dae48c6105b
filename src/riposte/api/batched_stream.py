"""A streaming response that sends everything ready at the same moment in one socket write.

A producer task pulls items from an async generator, encodes them and queues the bytes; the
response's own task sends whatever is queued each time it runs. When one upstream read carries
many tokens, their events leave in a few writes instead of one each (a write is a system call,
which costs more than building the event); when tokens trickle in, each event still leaves as
soon as the producer waits for the next one. The producer pauses once a batch is full, so a slow
client slows the upstream read instead of growing memory. Batches start at one item and double
up to `MAX_BATCH`, so the first delta of a large burst is not held back behind the rest of it;
the first batch holds `FIRST_BATCH`, room for the opening events, so that the turn goes on to
call the upstream while they are being written.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Generic, TypeVar

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send

FIRST_BATCH = 4
MAX_BATCH = 32

Item = TypeVar("Item")


class _Outbox:
    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._closed = False
        self._filled = anyio.Event()
        self._taken = anyio.Event()
        self._batch = FIRST_BATCH

    async def put(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._filled.set()
        if len(self._pending) >= self._batch:
            self._batch = min(self._batch * 2, MAX_BATCH)
            await self._taken.wait()

    def close(self, trailer: bytes) -> None:
        if trailer:
            self._pending.append(trailer)
        self._closed = True
        self._filled.set()

    async def take(self) -> bytes | None:
        """Everything queued, joined; None once the producer is done and nothing is left."""
        while not self._pending:
            if self._closed:
                return None
            await self._filled.wait()
            self._filled = anyio.Event()
        batch = b"".join(self._pending)
        self._pending.clear()
        self._taken.set()
        self._taken = anyio.Event()
        return batch


class BatchedStreamingResponse(StreamingResponse, Generic[Item]):
    """Starlette's StreamingResponse (headers, disconnect handling) with batched body writes.

    `trailer` follows the last item only when the generator ran to its end.
    """

    def __init__(self, items: AsyncGenerator[Item], encode: Callable[[Item], bytes], *, trailer: bytes,
                 media_type: str, headers: dict[str, str]) -> None:
        super().__init__(_never(), media_type=media_type, headers=headers)
        self._items = items
        self._encode = encode
        self._trailer = trailer

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        outbox = _Outbox()
        async with anyio.create_task_group() as group:
            group.start_soon(self._produce, outbox)
            while (batch := await outbox.take()) is not None:
                await send({"type": "http.response.body", "body": batch, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

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


async def _never() -> AsyncGenerator[bytes]:
    """The body iterator StreamingResponse requires; this class streams `items` instead."""
    return
    yield b""
