"""`EventLog.flush()` returns only once every event appended before it is written, including
events the flusher took from the buffer and is still writing (a resume right after a stream ended
must find them)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store.event_log import EventLog, _Run


@pytest.fixture
def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    return migrated_engine


class _HeldWrites(EventLog):
    """An event log whose writes wait until the test lets them go."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, flush_seconds=0.001)
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def _write(self, batch: list[_Run]) -> None:
        self.writing.set()
        await self.release.wait()
        await super()._write(batch)


async def test_flush_waits_for_the_batch_being_written(engine: AsyncEngine) -> None:
    response_id = f"resp_inflight_{id(engine)}"
    log = _HeldWrites(engine)
    log.start()
    try:
        log.append_event(response_id, {"type": "response.created", "sequence_number": 0})
        await asyncio.wait_for(log.writing.wait(), 5)  # the flusher took the event; the buffer is empty
        waiter = asyncio.create_task(log.flush())
        await asyncio.sleep(0.05)
        assert not waiter.done(), "flush() returned while the event was still being written"
        log.release.set()
        await asyncio.wait_for(waiter, 5)
        assert await log.has_events(response_id)
    finally:
        log.release.set()
        await log.aclose()
