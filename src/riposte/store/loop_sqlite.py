"""Small SQLite writes on the event loop's own thread, through a second connection to the file.

A turn's two rows (its start and its end) take about 0.15 ms of SQLite work. Through the
driver's thread each took 1-2 ms of the request's time: that thread needs the GIL back after
every SQLite step, and the loop, busy with the same turn's upstream read, lets go of it only once
per switch interval; the first token of every stored stream waited for that row
(bench/RESULTS.md, "Issue 16, eighth pass"). Written here, the row takes its 0.15 ms.

What keeps a write here from holding up the loop:
- No waiting for a lock (busy timeout 0): when another connection holds SQLite's write lock (the
  driver's own, another worker process), the write is `Declined` at once and its caller
  sends it through the driver's thread, which waits as long as it must.
- No checkpoint here: a checkpoint copies the write-ahead log into the database and syncs both
  files, milliseconds. After every `checkpoint_bytes` written through this connection, one runs
  on the driver's thread (that connection also checkpoints by itself, after its own commits).
- Only small writes are sent here, and only those of a turn running alone or a stream's first row
  (see `GroupCommit` and `ResponseStore`); and only in WAL mode, where a commit does not sync the
  file (`synchronous=NORMAL`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

# SQLite's own automatic checkpoint comes after 1,000 pages of log, 4 MiB at the default page size.
CHECKPOINT_BYTES = 4 * 1024 * 1024
_LOCK_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class Declined(Exception):
    """Nothing was written: another connection holds SQLite's write lock, or this connection cannot
    be used. The write goes through the driver's thread instead."""


class LoopConnection:
    """The connection is opened on first use, on the loop (once, well under a millisecond)."""

    def __init__(self, engine: AsyncEngine, path: str, checkpoint_bytes: int = CHECKPOINT_BYTES) -> None:
        self._engine = engine
        self._path = path
        self._checkpoint_bytes = checkpoint_bytes
        self._connection: sqlite3.Connection | None = None
        self._unavailable = False
        self._written = 0  # bytes written here since the last checkpoint was asked for
        self._checkpoint: asyncio.Task[None] | None = None
        # The last checkpoint's result: (busy, frames in the log, frames checkpointed).
        self.last_checkpoint: tuple[int, int, int] | None = None

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> LoopConnection | None:
        """One for an SQLite file; None for PostgreSQL (its driver runs on the loop already) and for
        an in-memory database (a second connection would see another database)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return cls(engine, url.database)

    def run(self, transaction: Callable[[sqlite3.Connection], Result], weight: int) -> Result:
        """`transaction` on this connection, now, inside the transaction begun for it: it must commit
        or roll back before returning.
        `weight` is about the bytes it writes. `Declined` when the lock is taken or this connection
        cannot be used (the file is not in WAL mode); other errors of the transaction as raised."""
        connection = self._open()
        if connection.in_transaction:  # left open by a transaction that neither committed nor rolled back
            connection.rollback()
        try:
            connection.execute("BEGIN IMMEDIATE")  # the write lock first: busy, nothing has been done
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _LOCK_CODES:
                raise Declined(str(exc)) from exc
            raise
        result = transaction(connection)
        self._written += weight
        if self._written >= self._checkpoint_bytes and self._checkpoint is None:
            self._written = 0
            self._checkpoint = asyncio.create_task(self._checkpoint_on_driver_thread())
        return result

    def _open(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        if self._unavailable:
            raise Declined("the database is not in WAL mode")
        # timeout=0: SQLite's busy handler would sleep on the loop. No implicit BEGIN: `run` begins.
        connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
        mode = connection.execute("PRAGMA journal_mode").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            connection.close()
            self._unavailable = True
            logger.info("SQLite database %s is not in WAL mode: every write goes through the driver's thread",
                        self._path)
            raise Declined("the database is not in WAL mode")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        self._connection = connection
        return connection

    async def _checkpoint_on_driver_thread(self) -> None:
        try:
            async with self._engine.connect() as connection:
                row = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).first()
            if row is not None:
                busy, logged, checkpointed = (int(value) for value in tuple(row))
                self.last_checkpoint = (busy, logged, checkpointed)
        except Exception as exc:  # the next one will try again; the driver's commits checkpoint too
            logger.warning("a checkpoint of %s failed: %s", self._path, exc)
        finally:
            self._checkpoint = None

    async def checkpointed(self) -> None:
        """Wait for a checkpoint under way, if any."""
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])

    async def aclose(self) -> None:
        await self.checkpointed()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
