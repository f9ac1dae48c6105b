"""Noticing that the client of an HTTP request went away while its answer is being made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


async def cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancels `scope` when the client disconnects. Call it once the request body has been read:
    the next ASGI message is then the disconnect."""
    await _disconnected(receive)
    scope.cancel()


async def client_left_during(receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Runs `work` to its end and says whether the client disconnected meanwhile. The work is not
    cancelled: a non-streaming turn whose client gave up still runs and is stored (docs/RELIABILITY.md);
    only its answer has nobody to go to, and the request log should say so."""
    watcher = asyncio.create_task(_disconnected(receive))
    try:
        await work()
    finally:
        watcher.cancel()
    return watcher.done() and not watcher.cancelled() and watcher.exception() is None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class NoReply(Response):
    """The answer to a client that is gone: nothing is sent, so the request log says 499 rather than
    the status of an answer nobody received."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None
