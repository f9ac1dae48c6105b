"""`EarlyStart`: what was read before the turn took the stream over, then the stream itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from riposte.errors import UpstreamError
from riposte.inference.early_start import EarlyStart
from riposte.inference.upstream import ChunkBatch


def _batch(n: int) -> ChunkBatch:
    return [{"n": n}]


async def _stream(batches: int, *, fail_after: int | None = None,
                  gate: asyncio.Event | None = None) -> AsyncGenerator[ChunkBatch]:
    for n in range(batches):
        if n == fail_after:
            raise UpstreamError("upstream connection failed: reset")
        if gate is not None and n >= 2:
            await gate.wait()
        yield _batch(n)


async def test_kept_batches_come_first_then_the_stream_is_read_directly() -> None:
    gate = asyncio.Event()
    stream = _stream(5, gate=gate)
    early = EarlyStart(stream)
    await asyncio.sleep(0.01)  # the reader keeps batches 0 and 1, then waits at the gate
    kept = early.kept()
    assert await anext(kept) == _batch(0)
    assert await anext(kept) == _batch(1)
    gate.set()  # the read the reader was waiting on ends; it is kept, and the reader stops
    assert [batch async for batch in kept] == [_batch(2)]
    # The rest is read from the stream itself, no generator between it and the turn.
    assert [batch async for batch in stream] == [_batch(3), _batch(4)]
    await early.aclose()


async def test_a_stream_that_ended_while_read_early_stays_ended() -> None:
    stream = _stream(2)
    early = EarlyStart(stream)
    await asyncio.sleep(0.01)
    assert [batch async for batch in early.kept()] == [_batch(0), _batch(1)]
    assert [batch async for batch in stream] == []
    await early.aclose()


async def test_the_reader_error_comes_after_the_batches_read_before_it() -> None:
    early = EarlyStart(_stream(5, fail_after=2))
    await asyncio.sleep(0.01)
    kept = early.kept()
    assert await anext(kept) == _batch(0)
    assert await anext(kept) == _batch(1)
    with pytest.raises(UpstreamError, match="reset"):
        await anext(kept)
    await early.aclose()


async def test_aclose_stops_a_reader_still_waiting_and_closes_the_stream() -> None:
    gate = asyncio.Event()
    stream = _stream(5, gate=gate)
    early = EarlyStart(stream)
    await asyncio.sleep(0.01)
    await early.aclose()
    assert [batch async for batch in stream] == []  # closed: nothing more is read
