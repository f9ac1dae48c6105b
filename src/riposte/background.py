"""Background responses: queued by a request, run by a worker of any server process.

`queue_turn` stores the response `queued` together with its job, in one transaction. Every process
runs a `BackgroundRunner`: it claims jobs from the shared queue (store/background_jobs.py), runs
each as an ordinary turn whose events go to the event log, renews its leases, and stops a turn
when someone asks to cancel it, on any process. On shutdown it hands its unfinished jobs back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.ext.asyncio import AsyncConnection

from riposte.engine.request import CreateResponseRequest
from riposte.engine.response_object import snapshot
from riposte.engine.resume import ACTIVE_STATUSES
from riposte.engine.turn import BackgroundClaimLost, Turn
from riposte.errors import RiposteError
from riposte.store.background_jobs import CancelOutcome, ClaimedJob, JobQueue, enqueue, new_job_row
from riposte.store.event_log import EventLog, insert_events
from riposte.store.ownership import Owner

if TYPE_CHECKING:
    from riposte.services import Services

logger = logging.getLogger(__name__)

_IDLE_POLL_CAP_SECONDS = 4.0
# The events a background response's stream starts with while it waits in the queue.
QUEUED_EVENT_TYPES = ("response.created", "response.queued")


@dataclass(frozen=True)
class RunnerSettings:
    workers: int
    poll_seconds: float
    lease_seconds: float
    max_attempts: int


async def queue_turn(turn: Turn, body: CreateResponseRequest, owner: Owner, limit_key: str,
                     max_unfinished: int | None = None) -> dict[str, Any]:
    """Store a prepared background turn `queued`, with its job and the first events of its stream
    (`response.created` and `response.queued`, as OpenAI streams a queued response); the turn
    itself runs on a worker, numbering its events after these. A background response counts
    against its caller's `max_concurrent_requests` (`max_unfinished`) until it ends: RateLimitError
    when `limit_key` already has that many unfinished, and nothing is stored."""
    turn.response["status"] = "queued"
    request = body.model_dump(mode="json", exclude_unset=True)
    response_id = turn.response["id"]
    queued_events = [{"type": kind, "response": snapshot(turn.response), "sequence_number": number}
                     for number, kind in enumerate(QUEUED_EVENT_TYPES)]
    row = new_job_row(response_id, owner, {"body": request, "created_at": turn.response["created_at"]},
                      last_sequence=len(queued_events) - 1, limit_key=limit_key)

    async def with_job(connection: AsyncConnection) -> None:
        await enqueue(connection, row, max_unfinished)
        await insert_events(connection, response_id, queued_events)

    try:
        await turn.store.create(turn.new_row(), also=with_job)
    finally:
        await turn.tools.aclose()  # the worker builds the turn again, with its own tools
    return dict(turn.response)


@dataclass
class _Running:
    fence: int
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    # Set when this process gave the job up (lease lost, handed back): it must not end the job.
    released: bool = False


async def _retrying(action: Callable[[], Awaitable[None]], attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            await action()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            logger.warning("background job write failed; trying again", exc_info=True)
            await asyncio.sleep(0.1 * (attempt + 1))


class BackgroundRunner:
    def __init__(self, queue: JobQueue, log: EventLog, settings: RunnerSettings) -> None:
        self._queue = queue
        self._log = log
        # The services as a job's project sees them (set by `start`).
        self._view: Callable[[Owner], Services] | None = None
        self._settings = settings
        self._running: dict[str, _Running] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.draining = False

    def start(self, view: Callable[[Owner], Services]) -> None:
        self._view = view
        if self._settings.workers > 0:
            self._loop_task = asyncio.create_task(self._work_forever(), name="riposte background runner")

    def wake(self) -> None:
        """A job was queued here: look at the queue now rather than at the next poll."""
        self._wake.set()

    def cancel_if_running(self, response_id: str) -> None:
        """Someone asked (on any replica) to cancel this response: stop it now if it runs here."""
        running = self._running.get(response_id)
        if running is not None:
            running.scope.cancel()

    def drain(self) -> None:
        """Stop taking jobs (SIGTERM); running ones go on until shutdown hands them back."""
        self.draining = True
        self._wake.set()

    async def cancel(self, response_id: str) -> CancelOutcome:
        outcome = await self._queue.request_cancel(response_id)
        running = self._running.get(response_id)
        if outcome is CancelOutcome.REQUESTED and running is not None:
            running.scope.cancel()  # ours: stop it now rather than at the next poll
        return outcome

    async def aclose(self) -> None:
        """Shutdown: stop claiming, hand the running jobs back to the queue, then stop their turns
        (whose last writes the moved fence refuses)."""
        self.draining = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        held = {response_id: running.fence for response_id, running in self._running.items()}
        if held:
            for running in self._running.values():
                running.released = True
            try:
                await self._queue.hand_back(held)
                logger.warning("handed %d background response(s) back to the queue", len(held))
            except Exception:  # their leases run out instead, and another process takes them
                logger.exception("could not hand background responses back to the queue")
        for running in list(self._running.values()):
            running.scope.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._log.flush()

    async def _work_forever(self) -> None:
        renew_every = self._settings.lease_seconds / 3
        renewed_at = time.monotonic()
        wait = self._settings.poll_seconds
        while not self.draining:
            claimed = 0
            try:
                if time.monotonic() - renewed_at >= renew_every:
                    await self._renew()
                    renewed_at = time.monotonic()
                await self._stop_cancelled()
                claimed = await self._claim()
                await self._queue.give_up_expired(self._settings.max_attempts)
            except Exception:  # the database may be briefly unreachable: try again at the next poll
                logger.exception("background runner poll failed")
            wait = self._settings.poll_seconds if claimed or self._running else min(wait * 2, self._idle_poll_cap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    @property
    def _idle_poll_cap(self) -> float:
        """How far polls back off while this process holds no job and finds none. Polls on an idle
        server cost the streams CPU (three statements each), and an idle poll only finds what no
        wake-up announced: a job another SQLite process queued while its own workers were busy (a
        job queued here, or on any PostgreSQL replica, wakes the runner at once), or a lease that
        ran out, which the cap keeps within a quarter of a lease."""
        return max(self._settings.poll_seconds, min(_IDLE_POLL_CAP_SECONDS, self._settings.lease_seconds / 4))

    async def _claim(self) -> int:
        free = self._settings.workers - len(self._running)
        if free <= 0 or self.draining:
            return 0
        jobs = await self._queue.claim(free, self._settings.lease_seconds, self._settings.max_attempts)
        for job in jobs:
            self._running[job.response_id] = _Running(job.fence)
            task = asyncio.create_task(self._run(job), name=f"background {job.response_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(jobs)

    async def _renew(self) -> None:
        held = {response_id: running.fence for response_id, running in self._running.items()}
        if not held:
            return
        for response_id in await self._queue.renew(held, self._settings.lease_seconds):
            running = self._running.get(response_id)
            if running is not None:
                logger.warning("lost the lease on background response %s; stopping it here", response_id)
                running.released = True
                running.scope.cancel()

    async def _stop_cancelled(self) -> None:
        held = {response_id: running.fence for response_id, running in self._running.items()}
        for response_id in await self._queue.cancel_requested(held):
            running = self._running.get(response_id)
            if running is not None:
                running.scope.cancel()

    async def _run(self, job: ClaimedJob) -> None:
        running = self._running[job.response_id]
        try:
            turn = await self._prepare(job)
            if turn is None:
                return
            stored_up_to = -1

            async def store_terminal(terminal: list[dict[str, Any]]) -> None:
                # Durable before the response's end is: a crash between the two cannot leave a
                # `completed` response whose stored stream lacks its terminal event.
                nonlocal stored_up_to
                for event in terminal:
                    self._log.append_event(job.response_id, event, job.fence)
                    stored_up_to = event["sequence_number"]
                await self._log.flush()

            turn.before_end = store_terminal
            with running.scope:
                async with aclosing(turn.event_batches()) as batches:
                    async for batch in batches:
                        for event in batch:
                            if event["sequence_number"] > stored_up_to:
                                self._log.append_event(job.response_id, event, job.fence)
                        if self._log.full:
                            await self._log.room()
            await self._log.flush()
            if not running.released:
                await _retrying(lambda: self._settle(turn, job))
        except BackgroundClaimLost:
            logger.info("background response %s was taken over or has ended before it started", job.response_id)
            await self._queue.finish(job.response_id, job.fence)  # ended: nothing left to run
        except Exception:
            logger.exception("background response %s failed", job.response_id)
        finally:
            self._running.pop(job.response_id, None)
            self._wake.set()  # a worker is free

    async def _settle(self, turn: Turn, job: ClaimedJob) -> None:
        """End the job; first store the turn's end again if its own write failed (a deadlock, a
        dropped connection), so the response is never left `in_progress` by a finished job."""
        if await turn.store.status(job.response_id) in ACTIVE_STATUSES:
            await turn.persist_again()
        await self._queue.finish(job.response_id, job.fence)

    async def _prepare(self, job: ClaimedJob) -> Turn | None:
        """The job's turn, built again from its request; None when the request no longer prepares
        (what it continues was deleted, say): the response then fails with the reason."""
        # The one way a request becomes a turn; imported here since the services import this module.
        from riposte.api.turn_start import start_turn

        assert self._view is not None  # jobs are claimed only once started
        try:
            body = CreateResponseRequest.model_validate(job.request["body"])
            turn = await start_turn(body, self._view(job.owner), response_id=job.response_id)
        except RiposteError as exc:
            await self._queue.fail(job.response_id, job.fence, exc.message)
            return None
        turn.response["created_at"] = job.request["created_at"]
        # Its first start after the queue's events announces no second `response.created`; a retry
        # after an attempt that streamed some does, so a reader knows the output starts again.
        turn.claimed(job.fence, job.first_sequence, announce_created=job.first_sequence != len(QUEUED_EVENT_TYPES))
        return turn
