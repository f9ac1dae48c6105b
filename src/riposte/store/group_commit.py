"""Group commit: writes asked for at about the same moment share one transaction.

Many turns start and end together under load, and each must store its row before the client
sees its id. One transaction each queued them on SQLite's single connection: the 64th turn of a
burst waited for 63 transactions. Here the first write starts a transaction at once; writes that
arrive while it runs go together in the next one, so a write waits for at most one transaction
besides its own.

On SQLite the whole batch also runs in one call on the driver's thread. Through SQLAlchemy's
async layer every statement is three or four hops between the event loop and that thread (cursor,
execute, fetch, close), and each hop waits for the loop to come round: under streaming load a
loop round is many milliseconds, and a batch of a few statements took hundreds. Batch writers are
therefore plain functions over `Statements`, run either there, on the raw connection, or (on
PostgreSQL, whose driver lives on the loop) through SQLAlchemy's `run_sync`.

On SQLite, a small write that its caller says is alone (nothing to share a transaction with)
skips the driver's thread while no batch of ours is on it: it is committed on the loop, at once,
through a second connection that never waits for a lock (store/loop_sqlite.py). So does a small
write that a client waits on before it sees anything (a stream's first row), even beside other
writes: under load each hop to the driver's thread waits for a pass of the loop, and at 64 paced
streams a stored stream's first row took 1.4-1.7 ms that way, most of its first token's time in the
server (bench/RESULTS.md, "Issue 16, tenth pass"). A write that connection declines, or one too
large to make without holding up the loop, goes through the thread as above.

A batch that fails is retried one write at a time, so a write that cannot be stored fails alone.
A caller that is cancelled while waiting does not take its write out of the batch: once asked
for, the write happens (the caller decides what a write it no longer waits for means).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable

from riposte.store.loop_sqlite import Declined, LoopConnection

logger = logging.getLogger(__name__)

Write = TypeVar("Write")
Result = TypeVar("Result")
Parameters = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    rowcount: int
    first: tuple[Any, ...] | None  # the first row a statement returned (RETURNING), if any


class Statements(Protocol):
    dialect: str

    def execute(self, statement: Executable, parameters: Parameters) -> Outcome: ...

    def execute_many(self, statement: Executable, rows: list[Parameters]) -> None: ...


# Writes one batch inside the open transaction; one result per write, in order.
BatchWriter = Callable[[Statements, Sequence[Write]], Sequence[Result]]
# About how many bytes a write stores.
Weigher = Callable[[Write], int]
# The largest write made on the loop: about 0.3 ms of SQLite work.
MAX_LOOP_BYTES = 64 * 1024


class GroupCommit(Generic[Write, Result]):
    """`on_loop` and `weigh` (both or neither) let small writes be made on the loop."""

    def __init__(self, engine: AsyncEngine, write_batch: BatchWriter[Write, Result],
                 on_loop: LoopConnection | None = None, weigh: Weigher[Write] | None = None) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._on_loop = on_loop if weigh is not None else None
        self._weigh = weigh
        self._waiting: list[tuple[Write, asyncio.Future[Result]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def write(self, write: Write, *, alone: bool = False, client_waits: bool = False) -> Result:
        """Store `write` in the next transaction; returns its result once that has committed.
        `alone`: no other writes are expected meanwhile, so it may be made on the loop.
        `client_waits`: a client sees nothing until this write is made, so it is made on the loop
        when it can be, whatever else is being written (the lock decides: a batch of ours that
        holds it on the driver's thread makes the loop's connection decline)."""
        if self._on_loop is not None and (client_waits or (alone and self._committer is None)):
            written = self._written_on_loop(write)
            if written:
                return written[0]
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((write, done))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_all())
        return await done

    def _written_on_loop(self, write: Write) -> Sequence[Result]:
        """`write` committed on the loop, now, when it is small; nothing when it is large or the
        loop's connection declines it (the lock is taken) or fails it (the driver's thread then
        tries it and reports the error as usual)."""
        assert self._on_loop is not None and self._weigh is not None
        weight = self._weigh(write)
        if weight > MAX_LOOP_BYTES:
            return ()
        try:
            return self._on_loop.run(partial(_in_one_transaction, write_batch=self._write_batch, writes=[write]),
                                     weight)
        except Declined:  # not worth a log line: under several processes, an everyday event
            pass
        except Exception as exc:
            logger.debug("a write on the loop failed (%s); it goes through the driver's thread",
                         type(exc).__name__)
        return ()

    async def _commit_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._commit(batch)
        finally:
            self._committer = None

    async def _commit(self, batch: list[tuple[Write, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._transaction([write for write, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            logger.warning("a group commit of %d writes failed (%s); writing them one by one", len(batch), exc)
            for one in batch:
                await self._commit([one])
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)

    async def _transaction(self, writes: list[Write]) -> Sequence[Result]:
        if self._engine.dialect.name == "sqlite":
            async with self._engine.connect() as connection:  # the process's one connection, held
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                if hasattr(driver, "_execute"):
                    # aiosqlite's own queue to its thread (private, but aiosqlite is pinned).
                    try:
                        result: Sequence[Result] = await driver._execute(
                            _in_one_transaction, driver._conn, self._write_batch, writes)
                    except sqlite3.Error as exc:  # as SQLAlchemy would have raised it
                        raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
                    return result
        async with self._engine.begin() as connection:
            return await connection.run_sync(lambda sync: self._write_batch(_SqlAlchemyStatements(sync), writes))


def _in_one_transaction(connection: sqlite3.Connection, write_batch: BatchWriter[Write, Result],
                        writes: list[Write]) -> Sequence[Result]:
    """On the SQLite driver's thread, or on the loop's own connection: the batch, then its commit
    (on the thread the driver's implicit BEGIN opens the transaction at the first write; on the
    loop `LoopConnection.run` has begun it already)."""
    try:
        results = write_batch(_SqliteStatements(connection), writes)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return results


class _SqlAlchemyStatements:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name

    def execute(self, statement: Executable, parameters: Parameters) -> Outcome:
        result = self._connection.execute(statement, parameters)
        first = result.first() if result.returns_rows else None
        return Outcome(result.rowcount, tuple(first) if first is not None else None)

    def execute_many(self, statement: Executable, rows: list[Parameters]) -> None:
        if rows:
            self._connection.execute(statement, rows)


_NAMED_SQLITE = sqlite.dialect(paramstyle="named")
# Statements compiled for the raw connection, by identity (the stores build each statement once).
_compiled: dict[int, tuple[Executable, str, Parameters]] = {}


def _sqlite_sql(statement: Executable) -> tuple[str, Parameters]:
    """The statement's SQL with `:name` parameters, and the values of its own literals."""
    found = _compiled.get(id(statement))
    if found is None or found[0] is not statement:
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_NAMED_SQLITE)
        found = _compiled[id(statement)] = (statement, str(compiled), dict(compiled.params))
    return found[1], found[2]


class _SqliteStatements:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, statement: Executable, parameters: Parameters) -> Outcome:
        sql, defaults = _sqlite_sql(statement)
        cursor = self._connection.execute(sql, {**defaults, **parameters})
        try:
            first = cursor.fetchone()
            return Outcome(cursor.rowcount, tuple(first) if first is not None else None)
        finally:
            cursor.close()

    def execute_many(self, statement: Executable, rows: list[Parameters]) -> None:
        if not rows:
            return
        sql, defaults = _sqlite_sql(statement)
        self._connection.executemany(sql, [{**defaults, **row} for row in rows]).close()
