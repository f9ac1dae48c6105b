"""A streaming response that sends everything ready at the same moment in one socket write.

One task pulls batches of items from an async generator (the events of one upstream read come
as one batch: a step of a generator chain costs more than encoding an event), encodes them and
writes them. To know what is "ready at the same moment" it takes each step of the generator by
hand: a step that finishes without waiting gives items that were ready, and they are only
queued; a step that has to wait (for the next upstream read) first sends what is queued, then
waits. So when one upstream read carries many tokens their events leave in a few writes instead
of one each (a write wakes the client, which costs more than building the event), and a token
that arrives alone leaves as soon as the turn waits for the next one, with no second task, event
or future per token (a producer task handing bytes to a writer task cost two wake-ups per lone
token). Writes start at `FIRST_BATCH` items and double up to `MAX_BATCH`, so the first delta of a
large burst is not held back behind the rest of it. A slow client slows the generator: a write
waits for the socket's flow control before the next step is taken; so does a `Backpressure` that
is full (the event log, when the database falls behind). The last write carries the end of the
body.

A generator that only relays a source may lend it instead of re-yielding each of its reads (a
`Relay`, riposte/relay.py): the steps are then the source's own, taken and written in the same way,
and the generator is resumed once the source has ended or failed. A turn's paced upstream read then
wakes this writer and the upstream stream only, not the three generators of the turn in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Sequence
from contextlib import aclosing
from typing import Any, Generic, Protocol, TypeVar

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from riposte.api.disconnect import cancel_on_disconnect
from riposte.observability.metrics import ACTIVE_STREAMS
from riposte.relay import Relay

logger = logging.getLogger(__name__)

FIRST_BATCH = 4
MAX_BATCH = 128

Item = TypeVar("Item")
Result = TypeVar("Result")


class Backpressure(Protocol):
    """Something `encode` hands items to that can fall behind: the stream waits while it is full."""

    @property
    def full(self) -> bool: ...

    async def room(self) -> None: ...


class BatchedStreamingResponse(Response, Generic[Item]):
    """An HTTP streaming response of `encode(item)` for each item of each batch, then `trailer` if
    the generator ran to its end. A client that goes away cancels the generator (closing it) and
    the writes."""

    def __init__(self, batches: AsyncGenerator[Sequence[Item] | Relay[Any, Item]], encode: Callable[[Item], bytes],
                 *, trailer: bytes, media_type: str, headers: dict[str, str],
                 backpressure: Backpressure | None = None) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)
        self._batches = batches
        self._encode = encode
        self._trailer = trailer
        self._backpressure = backpressure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Written by a task of its own, whose stack is the writer and the turn's generators only.
        # Each wake-up for an upstream read resumes every frame between its task and the await it
        # sleeps in, and under the request's task that is some thirty frames of middleware and
        # routing, cold in the CPU's caches after each pause between paced reads: 6% of the CPU per
        # token at 64 x 5 ms (bench/RESULTS.md, "Issue 16, twelfth pass"). A cancelled request
        # task cancels the writer and waits for it to end.
        current = asyncio.current_task()
        cancels_before = current.cancelling() if current is not None else 0
        await asyncio.create_task(self._respond(receive, send))
        if current is not None and current.cancelling() > cancels_before:
            # This task was cancelled, and the writer it handed the cancellation to ended
            # normally: the canceller still expects it here.
            raise asyncio.CancelledError

    async def _respond(self, receive: Receive, send: Send) -> None:
        # A cancel scope and a plain task to watch for the client leaving, not a task group: the
        # group's own machinery (task handles, done callbacks, its exit) was about 7% of a short
        # stream's CPU, and the scope alone gives the same cancellation, shields included
        # (bench/RESULTS.md, "Issue 16, tenth pass").
        with ACTIVE_STREAMS.track_inprogress(), anyio.CancelScope() as writing:
            watcher = asyncio.create_task(cancel_on_disconnect(receive, writing))
            try:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                # Closed here, not left to the garbage collector, so a cancelled turn cleans up at once.
                async with aclosing(self._batches) as batches:
                    await self._write_all(batches, send)
            finally:
                watcher.cancel()
        if watcher.done() and not watcher.cancelled() and (error := watcher.exception()) is not None:
            # Seen here, so it is not reported as never retrieved; the answer went out regardless.
            logger.warning("watching for the client's disconnect failed: %r", error)

    async def _write_all(self, batches: AsyncGenerator[Sequence[Item] | Relay[Any, Item]], send: Send) -> None:
        encode, pending, limit, pressure = self._encode, list[bytes](), FIRST_BATCH, self._backpressure
        # While the generator lends a source (a `Relay`), the steps taken are the source's reads,
        # each made a batch by the relay's `feed`; the generator is resumed once the source has
        # ended or failed (riposte/relay.py).
        relay: Relay[Any, Item] | None = None
        while True:
            if pressure is not None and pressure.full:
                await _send_body(send, pending, more=True)
                await pressure.room()
            step = batches.__anext__() if relay is None else relay.source.__anext__()
            try:
                try:
                    waiting_on = step.send(None)
                except StopIteration as ready:  # the batch was ready without waiting
                    got, waited = ready.value, False
                else:
                    # The step must wait: what is ready leaves now, then the step goes on.
                    if pending:
                        try:
                            await _send_body(send, pending, more=True)
                        except BaseException as exc:
                            interrupted, relay = relay, None
                            await _end_interrupted(step, exc, interrupted, batches)
                            raise
                    got, waited = await _Resumed(step, waiting_on), True
                if relay is not None:
                    got = relay.feed(got)
            except StopAsyncIteration:
                if relay is None:
                    break
                relay = None  # the source ran to its end: the generator goes on
                continue
            except BaseException as exc:
                if relay is None:
                    raise
                relay.failed(exc)  # raised in the generator, where it would have read the source
                relay = None
                continue
            if isinstance(got, Relay):
                relay = got
                continue
            if waited:
                pending.extend(map(encode, got))
                continue
            for item in got:
                pending.append(encode(item))
                if len(pending) >= limit:
                    limit = min(limit * 2, MAX_BATCH)
                    await _send_body(send, pending, more=True)
        pending.append(self._trailer)
        await _send_body(send, pending, more=False)


async def _end_interrupted(step: Coroutine[Any, Any, Any], error: BaseException, relay: Relay[Any, Any] | None,
                           batches: AsyncGenerator[Any]) -> None:
    """End a step that a failed write interrupted, with the write's error, so the generator's own
    clean-up runs (it may wait, e.g. to store an abandoned response) before `aclosing` closes it.
    A relayed source's step is ended first, and what it raised reaches the generator as the error
    of its read."""
    if relay is not None:
        raised = error
        try:
            await _Resumed(step, throw=error)
        except StopAsyncIteration:
            pass
        except BaseException as source_error:
            raised = source_error
        relay.failed(raised)
        step = batches.__anext__()
        with contextlib.suppress(StopAsyncIteration):
            await step
        return
    with contextlib.suppress(StopAsyncIteration):
        await _Resumed(step, throw=error)


async def _send_body(send: Send, pending: list[bytes], *, more: bool) -> None:
    body = b"".join(pending)
    pending.clear()
    await send({"type": "http.response.body", "body": body, "more_body": more})


class _Resumed(Generic[Result]):
    """Awaiting this goes on with a coroutine that was stepped once by hand and had to wait on
    `waiting_on`, exactly as `await` would have: what the coroutine waits on is handed up to the
    task running us, and what the task sends or throws back is handed down. With `throw`, the
    coroutine is resumed with that exception instead."""

    __slots__ = ("_step", "_throw", "_waiting_on")

    def __init__(self, step: Coroutine[Any, Any, Result], waiting_on: Any = None, *,
                 throw: BaseException | None = None) -> None:
        self._step, self._waiting_on, self._throw = step, waiting_on, throw

    def __await__(self) -> Generator[Any, Any, Result]:
        step = self._step
        try:
            waiting_on = step.throw(self._throw) if self._throw is not None else self._waiting_on
            while True:
                try:
                    sent = yield waiting_on
                except BaseException as exc:  # handed down: the coroutine decides
                    waiting_on = step.throw(exc)
                else:
                    waiting_on = step.send(sent)
        except StopIteration as done:
            result: Result = done.value
            return result

