"""Group commit on real databases (SQLite on its driver's thread, PostgreSQL through SQLAlchemy):
writes asked for together share transactions, and a write that cannot be stored fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store.database import create_engine
from riposte.store.group_commit import GroupCommit, Statements


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS numbers"))
        await connection.execute(text("CREATE TABLE numbers (n INTEGER PRIMARY KEY)"))
    yield engine
    await engine.dispose()


_INSERT = text("INSERT INTO numbers (n) VALUES (:n)")


class _Numbers:
    def __init__(self) -> None:
        self.transactions: list[list[int]] = []

    def write(self, statements: Statements, numbers: Sequence[int]) -> list[int]:
        self.transactions.append(list(numbers))
        statements.execute_many(_INSERT, [{"n": n} for n in numbers[:-1]])
        assert statements.execute(_INSERT, {"n": numbers[-1]}).rowcount == 1
        return [n * 10 for n in numbers]


async def _stored(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return sorted(row[0] for row in await connection.execute(text("SELECT n FROM numbers")))


async def test_writes_asked_for_together_share_a_transaction_and_each_gets_its_result(engine: AsyncEngine) -> None:
    numbers = _Numbers()
    group = GroupCommit(engine, numbers.write)

    results = await asyncio.gather(*(group.write(n) for n in range(20)))

    assert results == [n * 10 for n in range(20)]
    assert await _stored(engine) == list(range(20))
    assert len(numbers.transactions) < 20
    assert sorted(n for batch in numbers.transactions for n in batch) == list(range(20))


async def test_a_write_that_fails_fails_alone(engine: AsyncEngine) -> None:
    numbers = _Numbers()
    group = GroupCommit(engine, numbers.write)
    await group.write(7)

    results = await asyncio.gather(*(group.write(n) for n in (1, 7, 2)), return_exceptions=True)

    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], IntegrityError)
    assert await _stored(engine) == [1, 2, 7]
