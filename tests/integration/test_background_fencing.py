"""The job queue's fencing on both databases: a worker whose lease expired and whose job another
worker claimed can write nothing any more (no events, no response end, no job end)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.errors import RateLimitError
from riposte.store.background_jobs import CancelOutcome, JobQueue, enqueue, new_job_row
from riposte.store.database import create_engine
from riposte.store.event_log import EventLog
from riposte.store.ownership import Owner
from riposte.store.responses import NewResponse, OpenResponse, ResponseStore
from riposte.store.schema import background_jobs


@pytest.fixture
def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    return migrated_engine


def _response(response_id: str, status: str) -> dict[str, object]:
    return {"id": response_id, "object": "response", "created_at": 1, "model": "m", "status": status,
            "background": True, "output": [], "error": None}


async def _queued(engine: AsyncEngine, response_id: str) -> ResponseStore:
    store = ResponseStore(engine, owner=None)
    response = _response(response_id, "queued")
    row = new_job_row(response_id, Owner(), {"body": {"model": "m", "input": "x"}, "created_at": 1})

    async def with_job(connection: object) -> None:
        await enqueue(connection, row)  # type: ignore[arg-type]

    await store.create(NewResponse(response, [], None, 0, 0), also=with_job)
    return store


def _event(sequence_number: int) -> dict[str, object]:
    return {"type": "response.output_text.delta", "sequence_number": sequence_number, "delta": "x"}


async def test_a_stale_worker_is_fenced_out(engine: AsyncEngine) -> None:
    response_id = f"resp_fence_{id(engine)}"
    store = await _queued(engine, response_id)
    stale, fresh = JobQueue(engine, "worker-stale"), JobQueue(engine, "worker-fresh")
    log = EventLog(engine, flush_seconds=0.01)
    log.start()
    try:
        [first] = await stale.claim(10, lease_seconds=0.05, max_attempts=3)
        assert first.response_id == response_id and first.first_sequence == 0
        for number in range(3):
            log.append_event(response_id, _event(number), first.fence)
        await log.flush()
        await asyncio.sleep(0.1)  # the stale worker's lease runs out
        [second] = await fresh.claim(10, lease_seconds=30, max_attempts=3)
        assert second.fence > first.fence
        assert second.first_sequence == 3, "a retry numbers its events after the stored ones"
        # Everything the stale worker still tries is refused.
        log.append_event(response_id, _event(3), first.fence)
        await log.flush()
        assert [n for n, _ in await log.read_after(response_id, -1)] == [0, 1, 2]
        assert not await store.finish(OpenResponse(response_id, None, 0, first.fence),
                                      _response(response_id, "completed"), [])
        assert not await stale.finish(response_id, first.fence)
        assert await stale.renew({response_id: first.fence}, 30) == {response_id}
        # The new owner's writes go through.
        log.append_event(response_id, _event(3), second.fence)
        await log.flush()
        assert [n for n, _ in await log.read_after(response_id, -1)] == [0, 1, 2, 3]
        assert await store.finish(OpenResponse(response_id, None, 0, second.fence),
                                  _response(response_id, "completed"), [])
        assert not await fresh.finish(response_id, second.fence), "the response's end already ended its job"
        # Its worker, still holding the job while its last events go out, has not lost it.
        assert await fresh.renew({response_id: second.fence}, 30) == set()
        assert await stale.renew({response_id: first.fence}, 30) == {response_id}
        assert await store.status(response_id) == "completed"
        assert await fresh.request_cancel(response_id) is CancelOutcome.ENDED
    finally:
        await log.aclose()


async def test_attempts_run_out_then_the_response_fails(engine: AsyncEngine) -> None:
    response_id = f"resp_attempts_{id(engine)}"
    store = await _queued(engine, response_id)
    queue = JobQueue(engine, "worker")
    for _ in range(2):
        claimed = [job for job in await queue.claim(10, 0.01, max_attempts=2) if job.response_id == response_id]
        assert claimed
        await asyncio.sleep(0.05)
    assert [job for job in await queue.claim(10, 0.01, max_attempts=2) if job.response_id == response_id] == []
    assert response_id in await queue.give_up_expired(max_attempts=2)
    assert await store.status(response_id) == "failed"


async def test_a_queued_job_cancelled_is_never_claimed(engine: AsyncEngine) -> None:
    response_id = f"resp_cancel_{id(engine)}"
    store = await _queued(engine, response_id)
    queue = JobQueue(engine, "worker")
    assert await queue.request_cancel(response_id) is CancelOutcome.CANCELLED
    assert await store.status(response_id) == "cancelled"
    assert [job for job in await queue.claim(10, 30, 3) if job.response_id == response_id] == []
    assert await queue.request_cancel(response_id) is CancelOutcome.ENDED


async def _enqueue_alone(engine: AsyncEngine, row: dict[str, object], max_unfinished: int) -> None:
    async with engine.begin() as connection:
        await enqueue(connection, row, max_unfinished)


async def test_two_creates_for_one_key_take_turns_at_the_limit(engine: AsyncEngine, database_url: str) -> None:
    """A key at its limit of unfinished background responses: a second create (here another
    process's connection) waits for the first's commit and then counts it, so both cannot pass."""
    other_process = create_engine(database_url)
    key = f"key_{secrets.token_hex(4)}"

    def row(number: int) -> dict[str, object]:
        return new_job_row(f"resp_turns_{key}_{number}", Owner(), {"body": {}, "created_at": 1}, limit_key=key)

    try:
        async with engine.connect() as first:
            await first.begin()
            await enqueue(first, row(0), max_unfinished=1)
            second = asyncio.create_task(_enqueue_alone(other_process, row(1), max_unfinished=1))
            await asyncio.sleep(0.3)
            assert not second.done(), "the second create must wait for the first to commit"
            await first.commit()
        with pytest.raises(RateLimitError):
            await second
        async with engine.connect() as connection:
            stored = (await connection.execute(
                select(func.count()).select_from(background_jobs).where(background_jobs.c.limit_key == key))).scalar()
        assert stored == 1
    finally:
        await other_process.dispose()
        await _drop_jobs(engine, background_jobs.c.limit_key == key)  # no later server's worker runs it


async def _job_rows(engine: AsyncEngine, response_id: str) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(background_jobs).where(background_jobs.c.response_id == response_id)
        return int((await connection.execute(query)).scalar() or 0)


async def test_deleting_a_response_drops_its_ended_job_and_keeps_an_unfinished_one(engine: AsyncEngine) -> None:
    ended, waiting = f"resp_ended_{secrets.token_hex(4)}", f"resp_waiting_{secrets.token_hex(4)}"
    store = await _queued(engine, ended)
    queue = JobQueue(engine, "worker")
    claimed = [job for job in await queue.claim(100, lease_seconds=30, max_attempts=3) if job.response_id == ended]
    assert claimed and await queue.finish(ended, claimed[0].fence)
    await _queued(engine, waiting)
    assert await store.delete(ended) and await store.delete(waiting)
    assert await _job_rows(engine, ended) == 0, "an ended job goes with its response"
    assert await _job_rows(engine, waiting) == 1, "an unfinished job stays for its worker to end"
    # Its worker claims it, finds the response gone (the turn cannot start) and ends it: the row goes.
    late = [job for job in await queue.claim(100, lease_seconds=30, max_attempts=3) if job.response_id == waiting]
    assert late and await queue.finish(waiting, late[0].fence)
    assert await _job_rows(engine, waiting) == 0, "a job ended after its response was deleted goes too"


async def test_a_job_that_fails_after_its_response_was_deleted_leaves_no_row(engine: AsyncEngine) -> None:
    gone, kept = f"resp_gone_{secrets.token_hex(4)}", f"resp_kept_{secrets.token_hex(4)}"
    store = await _queued(engine, gone)
    await _queued(engine, kept)
    queue = JobQueue(engine, "worker")
    claimed = {job.response_id: job for job in await queue.claim(100, lease_seconds=30, max_attempts=3)
               if job.response_id in (gone, kept)}
    assert await store.delete(gone)
    assert await queue.fail(gone, claimed[gone].fence, "what it continues was deleted")
    assert await queue.fail(kept, claimed[kept].fence, "what it continues was deleted")
    assert await _job_rows(engine, gone) == 0
    assert await _job_rows(engine, kept) == 1, "a live response's ended job stays until the response goes"
    assert await store.delete(kept)
    assert await _job_rows(engine, kept) == 0


async def _drop_jobs(engine: AsyncEngine, which: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(background_jobs).where(which))
