"""Following a stored response's stream: the stored events after a sequence number, then the live
ones as they are stored, until the terminal event.

Every event comes out of the event log (store/event_log.py), read by sequence number, so the
boundary between replayed and live events cannot skip or repeat one: each read asks for what comes
after the last event given. Events of a response run in this process wake the reader as soon as
they are written; a response run by another process is polled.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from riposte.store.event_log import EventLog
from riposte.store.responses import ResponseStore

TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
ACTIVE_STATUSES = frozenset({"queued", "in_progress"})


async def follow(log: EventLog, responses: ResponseStore, response_id: str, after: int, *,
                 poll_seconds: float, settle_seconds: float = 1.0) -> AsyncGenerator[list[dict[str, Any]]]:
    """Events after sequence number `after`, until the terminal event, in batches of those read
    together. A response that ended without one (cancelled, or failed by recovery after its
    process died) ends the stream once its status is final and no event came for
    `settle_seconds` (the last events may still be in a buffer)."""
    last = after
    quiet_since: float | None = None
    while True:
        # The status is read before the events: an end seen here was stored after events read below.
        status = await responses.status(response_id)
        events = await log.read_after(response_id, last)
        batch: list[dict[str, Any]] = []
        for sequence_number, event in events:
            last = sequence_number
            batch.append(event)
            if event.get("type") in TERMINAL_EVENTS:
                yield batch
                return
        if batch:
            yield batch
            quiet_since = None
            continue
        if status is None:
            return  # deleted meanwhile
        if status not in ACTIVE_STATUSES:
            now = time.monotonic()
            if quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle_seconds:
                return
        await log.wait_for_more(response_id, poll_seconds)
