"""The stored stream events of responses, for resuming a stream (`starting_after`).

Writes sit on the token path, so they never wait for the database: `append` puts the event in a
buffer, and one flusher task writes the buffer in a single statement per flush interval (or as soon
as it holds `max_batch` events), a group commit. Readers in this process are woken after each flush;
readers in other processes poll (see engine/resume.py).

A background worker's events carry the fence of its claim (store/background_jobs.py): a flush
raises the job's `last_sequence` only while that fence still holds, and writes the events only
then, so a worker whose lease was taken over can never add events after the new owner's.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.store import schema
from riposte.store.group_commit import GroupCommit, Statements
from riposte.store.notifications import EVENTS, notify, notify_each

logger = logging.getLogger(__name__)

_EVENTS = schema.response_events
_WRITE_ATTEMPTS = 3
# The largest sequence number the events table holds (an INTEGER column, 32 bits on PostgreSQL).
MAX_SEQUENCE_NUMBER = 2**31 - 1
_JOBS = schema.background_jobs


class _Run:
    """The unwritten events of one response (under one claim's fence), in order, stored as one row.

    No object per event: an event is its bytes in `data` and its JSON's bounds in `bounds`. Bytes
    and an array are nothing the garbage collector counts or walks, where a tuple per event, alive
    until the flush, set off three times the young collections of a stream without the log (64
    paced streams, bench/RESULTS.md)."""

    __slots__ = ("bounds", "data", "fence", "first_sequence", "last_sequence", "response_id")

    def __init__(self, response_id: str, fence: int | None, first_sequence: int) -> None:
        self.response_id = response_id
        self.fence = fence  # the background claim's, or None for a response streamed by its own request
        self.first_sequence = self.last_sequence = first_sequence
        # Event i's JSON is `data[i][bounds[2i]:bounds[2i + 1]]`, encoded once for the client and the
        # store. Each `data` is right-sized (the SSE frame holding the JSON, or a copy): orjson's own
        # result sits in a buffer of several KB, and thousands of them held for a flush fragmented
        # the heap by ~4 KB each (bench/RESULTS.md).
        self.data: list[bytes] = []
        self.bounds = array("q")

    def json_array(self) -> str:
        bounds = self.bounds
        return (b"[" + b",".join([data[bounds[2 * i]:bounds[2 * i + 1]] for i, data in enumerate(self.data)])
                + b"]").decode()


# A run's key: the response, or the response and the claim's fence.
_RunKey = str | tuple[str, int]


class EventLog:
    def __init__(self, engine: AsyncEngine, flush_seconds: float = 0.05, max_batch: int = 512,
                 max_buffered: int = 50_000) -> None:
        self._engine = engine
        self._writes: GroupCommit[list[_Run], None] = GroupCommit(engine, _write_flushes)
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        # Past this many unwritten events (the database is slower than the producers), appending
        # waits: memory stays bounded and no event is dropped.
        self._max_buffered = max_buffered
        self._runs: dict[_RunKey, _Run] = {}
        self._buffered = 0  # events in `_runs`
        self._has_work = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flushed = asyncio.Condition()
        # Batches taken from the buffer and batches written, so `flush()` waits for the one holding its events.
        self._taken = 0
        self._urgent = False
        self._written = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Readers waiting for a response's next events, woken after a flush that wrote some.
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)

    def append_event(self, response_id: str, event: dict[str, Any], fence: int | None = None) -> None:
        """Buffer an event; no I/O. When the buffer is `full`, the caller awaits `room()`."""
        data = bytes(memoryview(orjson.dumps(event)))  # a right-sized copy, see `_Pending`
        self.append(response_id, event["sequence_number"], data, 0, len(data), fence)

    def append(self, response_id: str, sequence_number: int, data: bytes, start: int, end: int,
               fence: int | None = None) -> None:
        """Buffer an event already encoded as JSON (`data[start:end]`, `data` right-sized); no I/O."""
        key: _RunKey = response_id if fence is None else (response_id, fence)
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = _Run(response_id, fence, sequence_number)
        run.last_sequence = sequence_number
        run.data.append(data)
        run.bounds.append(start)
        run.bounds.append(end)
        self._buffered += 1
        if self._buffered == 1 or self._buffered >= self._max_batch:
            self._has_work.set()
        if self._buffered >= self._max_buffered:
            self._room.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="riposte event log")

    @property
    def full(self) -> bool:
        """The buffer holds `max_buffered` events (the database falls behind): await `room()`."""
        return not self._room.is_set()

    async def room(self) -> None:
        """Wait while the buffer is full."""
        await self._room.wait()

    async def flush(self) -> None:
        """Return once every event appended so far is written (or refused by its fence)."""
        if self._buffered:
            target = self._taken + 1  # the batch that will take the buffered events
            self._urgent = True  # no group-commit wait: someone waits for this write
            self._has_work.set()
        else:
            # The flusher may have taken the last events already and still be writing them.
            target = self._taken
        if self._written >= target:
            return
        async with self._flushed:
            await self._flushed.wait_for(lambda: self._written >= target or self._task is None)

    async def read_after(self, response_id: str, after: int, limit: int = 64) -> list[tuple[int, dict[str, Any]]]:
        """The stored events numbered after `after`, in order (from at most `limit` flushes)."""
        query = (select(_EVENTS.c.events)
                 .where(_EVENTS.c.response_id == response_id, _EVENTS.c.last_sequence > after)
                 .order_by(_EVENTS.c.first_sequence).limit(limit))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).scalars().all()
        found: list[tuple[int, dict[str, Any]]] = []
        for row in rows:
            for event in orjson.loads(row):
                if event["sequence_number"] > after:
                    found.append((event["sequence_number"], event))
        return found

    async def has_events(self, response_id: str) -> bool:
        query = select(func.count()).select_from(_EVENTS).where(_EVENTS.c.response_id == response_id)
        async with self._engine.connect() as connection:
            return bool((await connection.execute(query)).scalar())

    async def wait_for_more(self, response_id: str, timeout: float) -> None:
        """Sleep until a local flush wrote events of this response, or `timeout` (other processes)."""
        woken = asyncio.Event()
        self._listeners[response_id].add(woken)
        try:
            await asyncio.wait_for(woken.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            listeners = self._listeners.get(response_id)
            if listeners is not None:
                listeners.discard(woken)
                if not listeners:
                    del self._listeners[response_id]

    def wake(self, response_id: str) -> None:
        """New events of this response are stored (here, or on another replica: store/notifications.py)."""
        for listener in self._listeners.get(response_id, ()):
            listener.set()

    async def aclose(self) -> None:
        self._closing = True
        self._has_work.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _flush_forever(self) -> None:
        while True:
            await self._has_work.wait()
            if self._buffered < self._max_batch and not self._closing and not self._urgent:
                # Group commit: let the interval gather more events into this statement.
                await asyncio.sleep(self._flush_seconds)
            self._has_work.clear()
            self._urgent = False
            batch, self._runs, self._buffered = list(self._runs.values()), {}, 0
            self._taken += 1
            self._room.set()
            if batch:
                await self._write_retrying(batch)
            async with self._flushed:
                self._written += 1
                self._flushed.notify_all()
            for response_id in {run.response_id for run in batch}:
                self.wake(response_id)
            if self._closing and not self._buffered:
                return

    async def _write_retrying(self, batch: list[_Run]) -> None:
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                await self._write(batch)
                return
            except Exception:  # a database hiccup loses these events for resume, never the stream
                if attempt == _WRITE_ATTEMPTS - 1:
                    logger.exception("could not store %d stream events", sum(len(run.data) for run in batch))
                else:
                    await asyncio.sleep(0.05 * (attempt + 1))

    async def _write(self, batch: list[_Run]) -> None:
        await self._writes.write(batch)


def _write_flushes(statements: Statements, flushes: Sequence[list[_Run]]) -> list[None]:
    """One transaction: each flush's events, one row per response (run on the SQLite driver's
    thread in one call, see store/group_commit.py; a flush took a loop round per statement)."""
    for flush in flushes:
        _write_flush(statements, flush)
    return [None] * len(flushes)


def _write_flush(statements: Statements, batch: list[_Run]) -> None:
    rows = [run for run in batch if run.fence is None]
    # In a fixed order: concurrent flushes and lease renewals lock job rows without deadlocking.
    for run in sorted((run for run in batch if run.fence is not None), key=lambda run: (run.response_id, run.fence)):
        assert run.fence is not None
        if _advance(statements, run.response_id, run.fence, run.last_sequence):
            rows.append(run)
    if not rows:
        return
    statements.execute_many(_INSERT, [
        {"response_id": run.response_id, "first_sequence": run.first_sequence, "last_sequence": run.last_sequence,
         "events": run.json_array()}
        for run in rows])
    notify_each(statements, EVENTS, sorted({run.response_id for run in rows}))


_INSERT = _EVENTS.insert().values(response_id=bindparam("response_id"), first_sequence=bindparam("first_sequence"),
                                  last_sequence=bindparam("last_sequence"), events=bindparam("events"))
# Built once: the SQLite path compiles each statement object once (store/group_commit.py).
_ADVANCE = (update(_JOBS)
            .where(_JOBS.c.response_id == bindparam("advance_id"), _JOBS.c.fence == bindparam("advance_fence"))
            .values(last_sequence=bindparam("advance_to")))


def _advance(statements: Statements, response_id: str, fence: int, last_sequence: int) -> bool:
    """Record the job's new last sequence number while its fence holds. The UPDATE locks the job's
    row (PostgreSQL; SQLite has one writer), so a claim cannot slip between this check and the insert."""
    return bool(statements.execute(_ADVANCE, {"advance_id": response_id, "advance_fence": fence,
                                              "advance_to": last_sequence}).rowcount)


async def insert_events(connection: AsyncConnection, response_id: str, events: Sequence[dict[str, Any]]) -> None:
    """Store events in the caller's transaction, as one row (a queued background response's first
    events, written with its job so a stream of it shows them at once)."""
    await connection.execute(_INSERT, {
        "response_id": response_id, "first_sequence": events[0]["sequence_number"],
        "last_sequence": events[-1]["sequence_number"],
        "events": (b"[" + b",".join(orjson.dumps(event) for event in events) + b"]").decode()})
    await notify(connection, EVENTS, response_id)


async def delete_events(connection: AsyncConnection, response_id: str) -> None:
    await connection.execute(delete(_EVENTS).where(_EVENTS.c.response_id == response_id))
