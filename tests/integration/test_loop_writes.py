"""Small SQLite writes made on the event loop (store/loop_sqlite.py): where each write runs, and
that a locked database, a large write or a failing one still goes through the driver's thread
as before."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from riposte.store.database import create_engine, migrate
from riposte.store.group_commit import MAX_LOOP_BYTES, GroupCommit, Statements
from riposte.store.loop_sqlite import Declined, LoopConnection
from riposte.store.responses import NewResponse, ResponseStore

_INSERT = text("INSERT INTO numbers (n) VALUES (:n)")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "loop.db"


@pytest.fixture
async def engine(path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE numbers (n INTEGER PRIMARY KEY)"))
    yield engine
    await engine.dispose()


class _Numbers:
    """Writes numbers, noting the thread of each transaction."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def write(self, statements: Statements, numbers: Sequence[int]) -> list[int]:
        self.threads.append(threading.get_ident())
        for n in numbers:
            statements.execute(_INSERT, {"n": n})
        return [n * 10 for n in numbers]

    @property
    def on_the_loop(self) -> list[bool]:
        return [thread == threading.main_thread().ident for thread in self.threads]


async def _stored(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return sorted(row[0] for row in await connection.execute(text("SELECT n FROM numbers")))


async def test_a_small_write_commits_on_the_loop_itself(engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)

    assert await group.write(1, alone=True) == 10
    assert await group.write(2, alone=True) == 20

    assert numbers.on_the_loop == [True, True]
    assert await _stored(engine) == [1, 2]  # committed: the driver's connection sees them
    await on_loop.aclose()


async def test_writes_not_alone_go_together_through_the_driver_thread(engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)

    assert await asyncio.gather(*(group.write(n) for n in range(1, 6))) == [10, 20, 30, 40, 50]

    assert numbers.on_the_loop == [False]  # one transaction for the five
    assert await _stored(engine) == [1, 2, 3, 4, 5]
    await on_loop.aclose()


async def test_a_write_a_client_waits_on_is_made_on_the_loop_beside_a_batch_on_the_thread(
        engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)

    batch = [asyncio.create_task(group.write(n)) for n in (1, 2)]
    await asyncio.sleep(0)  # a batch of ours is on its way to the driver's thread
    assert await group.write(3, client_waits=True) == 30
    assert await group.write(4, alone=True) == 40  # alone, but beside a batch of ours: it joins the batch
    assert await asyncio.gather(*batch) == [10, 20]

    assert numbers.on_the_loop == [True, False]
    assert await _stored(engine) == [1, 2, 3, 4]
    await on_loop.aclose()


async def test_a_write_a_client_waits_on_still_waits_for_a_lock_held_elsewhere(engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    write = asyncio.create_task(group.write(6, client_waits=True))
    await asyncio.sleep(0.2)
    assert not write.done()  # declined on the loop at once; the driver's thread waits for the lock
    other.execute("COMMIT")
    other.close()

    assert await write == 60
    assert numbers.on_the_loop == [False]
    await on_loop.aclose()


async def test_without_the_loop_connection_writes_go_through_the_driver_thread(engine: AsyncEngine) -> None:
    numbers = _Numbers()
    group = GroupCommit(engine, numbers.write)

    assert await group.write(1, alone=True) == 10
    assert numbers.on_the_loop == [False]


async def test_a_large_write_goes_through_the_driver_thread(engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: MAX_LOOP_BYTES + 1 if n > 100 else 8)

    assert await group.write(1000, alone=True) == 10000
    assert await group.write(1, alone=True) == 10

    assert numbers.on_the_loop == [False, True]
    await on_loop.aclose()


async def test_a_locked_database_sends_the_write_through_the_driver_thread_which_waits(
        engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, say
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO numbers (n) VALUES (99)")

    write = asyncio.create_task(group.write(5, alone=True))
    await asyncio.sleep(0.2)
    assert not write.done()  # the loop was not held: this test ran on while the write waited
    other.execute("COMMIT")
    other.close()

    assert await write == 50
    assert numbers.on_the_loop == [False]
    assert await _stored(engine) == [5, 99]
    await on_loop.aclose()


async def test_a_write_that_fails_on_the_loop_fails_as_it_did_on_the_thread(engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)
    await group.write(7, alone=True)

    with pytest.raises(IntegrityError):
        await group.write(7, alone=True)
    assert await group.write(8, alone=True) == 80

    # tried on the loop, then once more on the driver's thread, where its error is raised
    assert numbers.on_the_loop == [True, True, False, True]
    assert await _stored(engine) == [7, 8]
    await on_loop.aclose()


async def test_what_is_written_on_the_loop_is_checkpointed_on_the_driver_thread(
        engine: AsyncEngine, path: Path) -> None:
    on_loop = LoopConnection(engine, str(path), checkpoint_bytes=100)
    group = GroupCommit(engine, _Numbers().write, on_loop, weigh=lambda n: 60)

    await group.write(1, alone=True)
    assert on_loop.last_checkpoint is None
    await group.write(2, alone=True)
    await on_loop.checkpointed()

    assert on_loop.last_checkpoint is not None
    busy, logged, checkpointed = on_loop.last_checkpoint
    assert busy == 0 and logged > 0 and checkpointed == logged
    await on_loop.aclose()


async def test_a_database_not_in_wal_mode_is_never_written_on_the_loop(engine: AsyncEngine, tmp_path: Path) -> None:
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).close()  # rollback journal: a commit there syncs the file
    on_loop = LoopConnection(engine, str(plain))

    for _ in range(2):
        with pytest.raises(Declined, match="WAL"):
            on_loop.run(lambda connection: connection.execute("INSERT INTO t VALUES (1)"), 8)
        await on_loop.aclose()


def test_only_an_sqlite_file_gets_a_loop_connection(tmp_path: Path) -> None:
    assert LoopConnection.for_engine(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}")) is not None
    assert LoopConnection.for_engine(create_async_engine("sqlite+aiosqlite://")) is None
    assert LoopConnection.for_engine(create_engine("postgresql+asyncpg://localhost/test")) is None


async def test_a_turns_rows_may_be_written_on_the_loop_while_it_runs_alone_or_a_client_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}")
    await migrate(engine)
    on_loop = LoopConnection.for_engine(engine)
    store = ResponseStore(engine, owner="inst_test", on_loop=on_loop)
    asked: list[tuple[str, bool]] = []
    write = GroupCommit.write

    async def noting(self: GroupCommit[Any, Any], what: Any, *, alone: bool = False,
                     client_waits: bool = False) -> Any:
        asked.append((type(what).__name__, alone, client_waits))
        return await write(self, what, alone=alone, client_waits=client_waits)

    monkeypatch.setattr(GroupCommit, "write", noting)

    def turn(response_id: str) -> dict[str, Any]:
        return {"id": response_id, "object": "response", "created_at": 1.0, "model": "m", "status": "in_progress",
                "output": []}

    first, second = turn("resp_first"), turn("resp_second")
    opened_first = await store.create(NewResponse(first, [], None, 0, 0))
    opened_second = await store.create(NewResponse(second, [], None, 0, 0))
    assert await store.finish(opened_first, {**first, "status": "completed"}, [])
    assert await store.finish(opened_second, {**second, "status": "completed"}, [])
    await store.create(NewResponse(turn("resp_third"), [], None, 0, 0))
    await store.create(NewResponse(turn("resp_fourth"), [], None, 0, 0), client_waits=True)

    assert asked == [("_Creation", True, False), ("_Creation", False, False), ("_Finish", False, False),
                     ("_Finish", True, False), ("_Creation", True, False), ("_Creation", False, True)]
    assert on_loop is not None
    await on_loop.aclose()
    await engine.dispose()


async def test_a_transaction_left_open_on_the_loop_connection_does_not_stop_later_writes(
        engine: AsyncEngine, path: Path) -> None:
    numbers, on_loop = _Numbers(), LoopConnection(engine, str(path))
    group = GroupCommit(engine, numbers.write, on_loop, weigh=lambda n: 8)
    on_loop.run(lambda connection: connection.execute("INSERT INTO numbers (n) VALUES (42)"), 8)  # no commit

    assert await group.write(1, alone=True) == 10

    assert numbers.on_the_loop == [True]
    assert await _stored(engine) == [1]  # the abandoned insert was rolled back, not committed
    await on_loop.aclose()
