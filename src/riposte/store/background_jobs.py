"""The queue of background responses, shared by every server process on one database.

A worker claims jobs (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite lets one writer in
at a time, so the same statement is atomic there) and holds each with a lease it renews. Every claim
raises the job's fence; whatever the worker writes later (events, the response's end, the job's
end) checks the fence it claimed with, so a worker whose lease expired and whose job went to
another worker can never write over the new owner's work. A job whose lease ran out goes back to the
queue until it has been started `max_attempts` times; then its response fails.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import and_, delete, false, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.errors import RateLimitError
from riposte.store import schema
from riposte.store.notifications import CANCEL, JOBS, notify
from riposte.store.ownership import Owner

_JOBS = schema.background_jobs
_RESPONSES = schema.responses
QUEUED, RUNNING, DONE = "queued", "running", "done"
# Named, not `!= DONE`, so the count of a key's unfinished jobs reads two keys of its index, not
# every job the key ever had.
UNFINISHED = (QUEUED, RUNNING)
GAVE_UP = ("server restarted: the server processes running this background response stopped before it finished, "
           "too many times")


@dataclass(frozen=True)
class ClaimedJob:
    response_id: str
    owner: Owner
    request: dict[str, Any]
    fence: int
    # The next attempt numbers its events after the ones already stored.
    first_sequence: int


class CancelOutcome(Enum):
    CANCELLED = "cancelled"  # it was queued: cancelled now
    REQUESTED = "requested"  # it is running: its worker stops it
    ENDED = "ended"  # it had already ended (or there is no job: not a background response)


def new_job_row(response_id: str, owner: Owner, request: dict[str, Any], last_sequence: int = -1,
                limit_key: str | None = None) -> dict[str, Any]:
    """`last_sequence`: the last of the events stored with the job (-1: none). `limit_key`: whose
    limits the job counts against (auth/principal.py)."""
    return {"response_id": response_id, "project": owner.project, "sees_all": owner.sees_all,
            "request": orjson.dumps(request).decode(), "state": QUEUED, "queued_at": time.time(), "owner": None,
            "lease_until": None, "fence": 0, "attempts": 0, "cancel_requested": False,
            "last_sequence": last_sequence, "limit_key": limit_key}


async def enqueue(connection: AsyncConnection, row: dict[str, Any], max_unfinished: int | None = None) -> None:
    """Queue the job. With `max_unfinished`, a job whose `limit_key` already holds that many
    unfinished jobs (queued or running, by any process) is refused with RateLimitError, which rolls
    the caller's transaction back.

    Counted after the insert, inside its transaction, so that two creates for one key cannot both
    count the other out: on SQLite the insert takes the database's one write lock until the commit;
    on PostgreSQL a lock per key, taken first, makes them take turns."""
    key = row["limit_key"]
    counted = max_unfinished is not None and key is not None
    if counted and connection.dialect.name == "postgresql":
        await connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"riposte.background:{key}"))))
    await connection.execute(_JOBS.insert(), row)
    if counted:
        unfinished = await connection.scalar(
            select(func.count()).select_from(_JOBS).where(_JOBS.c.limit_key == key, _JOBS.c.state.in_(UNFINISHED)))
        if (unfinished or 0) > (max_unfinished or 0):
            raise RateLimitError(
                f"Too many unfinished background responses for this key (limit {max_unfinished}): wait for one "
                "to end, or cancel one.", retry_after=1, param="background")
    await notify(connection, JOBS)


class JobQueue:
    def __init__(self, engine: AsyncEngine, worker_id: str) -> None:
        self._engine = engine
        self._worker_id = worker_id

    async def claim(self, limit: int, lease_seconds: float, max_attempts: int) -> list[ClaimedJob]:
        now = time.time()
        claimable = and_(
            or_(_JOBS.c.state == QUEUED, and_(_JOBS.c.state == RUNNING, _JOBS.c.lease_until < now)),
            _JOBS.c.attempts < max_attempts, _JOBS.c.cancel_requested == false())
        chosen = (select(_JOBS.c.response_id).where(claimable).order_by(_JOBS.c.queued_at).limit(limit)
                  .with_for_update(skip_locked=True))
        statement = (update(_JOBS).where(_JOBS.c.response_id.in_(chosen.scalar_subquery()), claimable)
                     .values(state=RUNNING, owner=self._worker_id, lease_until=now + lease_seconds,
                             fence=_JOBS.c.fence + 1, attempts=_JOBS.c.attempts + 1)
                     .returning(_JOBS.c.response_id, _JOBS.c.project, _JOBS.c.sees_all, _JOBS.c.request,
                                _JOBS.c.fence, _JOBS.c.last_sequence))
        async with self._engine.begin() as connection:
            rows = (await connection.execute(statement)).all()
        return [ClaimedJob(response_id=row[0], owner=Owner(project=row[1], sees_all=bool(row[2])),
                           request=orjson.loads(row[3]), fence=int(row[4]), first_sequence=int(row[5]) + 1)
                for row in rows]

    async def renew(self, held: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend the leases of these jobs (response id -> fence); return the ids no longer held.
        A job this claim ended itself (its turn's end wrote `done` under the same fence, just before
        its worker let go of it) is not lost: stopping it would cut its last events."""
        lost: set[str] = set()
        until = time.time() + lease_seconds
        async with self._engine.begin() as connection:
            for response_id, fence in sorted(held.items()):  # a fixed lock order: no deadlocks
                statement = (update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.fence == fence,
                                                 _JOBS.c.state == RUNNING)
                             .values(lease_until=until))
                if not (await connection.execute(statement)).rowcount and not await _ended_under(
                        connection, response_id, fence):
                    lost.add(response_id)
        return lost

    async def finish(self, response_id: str, fence: int) -> bool:
        async with self._engine.begin() as connection:
            ended = await end_job(connection, response_id, fence)
            if ended:
                await forget_ended_job(connection, response_id)
            return ended

    async def fail(self, response_id: str, fence: int, message: str) -> bool:
        """End a job whose turn could not even start (its previous response was deleted, say)."""
        async with self._engine.begin() as connection:
            statement = (update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.fence == fence,
                                             _JOBS.c.state == RUNNING)
                         .values(state=DONE, owner=None, lease_until=None))
            if not (await connection.execute(statement)).rowcount:
                return False
            await _end_response(connection, response_id, "failed", message)
            await forget_ended_job(connection, response_id)
        return True

    async def hand_back(self, held: dict[str, int]) -> None:
        """Shutdown: put these jobs back in the queue at once, not counting this start as an attempt.
        The fence moves, so whatever the stopping turn still writes is refused."""
        async with self._engine.begin() as connection:
            for response_id, fence in sorted(held.items()):
                await connection.execute(
                    update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.fence == fence,
                                        _JOBS.c.state == RUNNING)
                    .values(state=QUEUED, owner=None, lease_until=None, fence=_JOBS.c.fence + 1,
                            attempts=_JOBS.c.attempts - 1))
                await connection.execute(
                    update(_RESPONSES).where(_RESPONSES.c.id == response_id, _RESPONSES.c.status == "in_progress")
                    .values(status=QUEUED))

    async def cancel_requested(self, held: dict[str, int]) -> set[str]:
        """Which of these running jobs someone asked to cancel."""
        if not held:
            return set()
        query = select(_JOBS.c.response_id).where(_JOBS.c.response_id.in_(list(held)),
                                                  _JOBS.c.cancel_requested == true())
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    async def request_cancel(self, response_id: str) -> CancelOutcome:
        """Mark the job cancelled. A queued one is cancelled at once (the mark keeps every claim
        off it, and the same transaction ends it); a running one is left for its worker to stop."""
        mark = (update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.state != DONE)
                .values(cancel_requested=True).returning(_JOBS.c.state))
        end_queued = (update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.state == QUEUED)
                      .values(state=DONE, fence=_JOBS.c.fence + 1))
        async with self._engine.begin() as connection:
            state = (await connection.execute(mark)).scalar()
            if state is None:
                return CancelOutcome.ENDED
            if (await connection.execute(end_queued)).rowcount:
                await _end_response(connection, response_id, "cancelled", None)
                return CancelOutcome.CANCELLED
            await notify(connection, CANCEL, response_id)
        return CancelOutcome.REQUESTED

    async def give_up_expired(self, max_attempts: int) -> list[str]:
        """Jobs whose lease ran out and that may not be claimed again (started `max_attempts`
        times, or cancelled meanwhile): end them and their responses."""
        now = time.time()
        stuck = and_(_JOBS.c.state == RUNNING, _JOBS.c.lease_until < now,
                     or_(_JOBS.c.attempts >= max_attempts, _JOBS.c.cancel_requested == true()))
        chosen = select(_JOBS.c.response_id).where(stuck).limit(100).with_for_update(skip_locked=True)
        statement = (update(_JOBS).where(_JOBS.c.response_id.in_(chosen.scalar_subquery()), stuck)
                     .values(state=DONE, owner=None, lease_until=None, fence=_JOBS.c.fence + 1)
                     .returning(_JOBS.c.response_id, _JOBS.c.cancel_requested))
        async with self._engine.begin() as connection:
            rows = (await connection.execute(statement)).all()
            for response_id, cancelled in rows:
                await _end_response(connection, response_id, "cancelled" if cancelled else "failed",
                                    None if cancelled else GAVE_UP)
        return [row[0] for row in rows]


async def _ended_under(connection: AsyncConnection, response_id: str, fence: int) -> bool:
    query = select(_JOBS.c.state).where(_JOBS.c.response_id == response_id, _JOBS.c.fence == fence)
    return (await connection.execute(query)).scalar() == DONE


async def end_job(connection: AsyncConnection, response_id: str, fence: int) -> bool:
    """Mark the job done while `fence` holds (with the response's end: store/responses.py)."""
    statement = (update(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.fence == fence,
                                     _JOBS.c.state == RUNNING)
                 .values(state=DONE, owner=None, lease_until=None))
    return bool((await connection.execute(statement)).rowcount)


async def forget_ended_job(connection: AsyncConnection, response_id: str) -> None:
    """Drop the job if it has ended and its response is deleted: called by the delete (for a job
    already ended) and when a job ends (for one whose response was deleted while it was queued or
    running). An unfinished job stays for its worker, whose end then drops it."""
    live = select(_RESPONSES.c.id).where(_RESPONSES.c.id == response_id, _RESPONSES.c.deleted == false())
    await connection.execute(delete(_JOBS).where(_JOBS.c.response_id == response_id, _JOBS.c.state == DONE,
                                                 ~live.exists()))


async def _end_response(connection: AsyncConnection, response_id: str, status: str, message: str | None) -> None:
    found = (await connection.execute(select(_RESPONSES.c.response).where(_RESPONSES.c.id == response_id))).scalar()
    if found is None:
        return
    response = orjson.loads(found)
    response["status"] = status
    if message is not None:
        response["error"] = {"code": "server_error", "message": message}
    # Never over a response that has ended already.
    await connection.execute(update(_RESPONSES).where(_RESPONSES.c.id == response_id,
                                                      _RESPONSES.c.status.in_((QUEUED, "in_progress")))
                             .values(status=status, response=orjson.dumps(response).decode(), owner=None))
