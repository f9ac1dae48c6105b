"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY.

Replicas share nothing but the database, so the database carries the signals: a flush of stream
events notifies `riposte_events` with the response id (readers following it on other replicas read
at once), a queued job notifies `riposte_jobs` (idle workers claim at once), a cancel request
notifies `riposte_cancel` (the owner stops the turn at once). A NOTIFY sent inside a transaction is
delivered at its commit, so a woken reader always finds the rows. Why not Redis pub/sub: it would add
a second service to run and to keep consistent with the database, for the same signal.

Every signal is only a hint: readers and workers also poll (`resume_poll_seconds`,
`background_poll_seconds`), which is the whole mechanism on SQLite and the fallback while the
listening connection is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.store.group_commit import Statements

logger = logging.getLogger(__name__)

EVENTS = "riposte_events"
JOBS = "riposte_jobs"
CANCEL = "riposte_cancel"
_RECONNECT_SECONDS = 2.0
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_NOTIFY_EACH = text("SELECT pg_notify(:channel, payload) FROM unnest(:payloads) AS payload").bindparams(
    bindparam("payloads", type_=ARRAY(Text)))


async def notify(connection: AsyncConnection, channel: str, payload: str = "") -> None:
    """Send a wake-up with the transaction's commit; nothing on SQLite (its readers poll)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(_NOTIFY, {"channel": channel, "payload": payload})


def notify_each(statements: Statements, channel: str, payloads: Sequence[str]) -> None:
    """`notify` once per payload, in one statement (one round trip, however many), inside a group
    commit's transaction (store/group_commit.py)."""
    if statements.dialect == "postgresql" and payloads:
        statements.execute(_NOTIFY_EACH, {"channel": channel, "payloads": list(payloads)})


class Listener:
    """One connection per process that LISTENs and calls the handlers registered per channel."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._task: asyncio.Task[None] | None = None

    def on(self, channel: str, handler: Callable[[str], None]) -> None:
        self._handlers[channel] = handler

    def start(self) -> None:
        if self._engine.dialect.name == "postgresql" and self._handlers:
            self._task = asyncio.create_task(self._listen_forever(), name="riposte LISTEN")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen_forever(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # only with PostgreSQL

        dsn = self._engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                for channel in self._handlers:
                    await connection.add_listener(channel, self._dispatch)
                await lost.wait()
                logger.warning("the LISTEN connection closed; polling until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: polling covers it meanwhile
                logger.warning("cannot LISTEN for wake-ups (%s); polling until it works", type(exc).__name__)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(_RECONNECT_SECONDS)

    def _dispatch(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        handler = self._handlers.get(channel)
        if handler is not None:
            handler(payload)
