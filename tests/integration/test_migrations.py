"""Migrations are named, ordered, recorded, idempotent, and safe when workers start together."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from riposte.store import schema
from riposte.store.database import create_engine, migrate
from riposte.store.migrations import MIGRATIONS


def test_concurrent_migrations_apply_each_step_once(database_url: str) -> None:
    async def run() -> list[str]:
        engines = [create_engine(database_url) for _ in range(4)]
        try:
            await asyncio.gather(*(migrate(engine) for engine in engines))
            async with engines[0].connect() as connection:
                names = list((await connection.execute(select(schema.schema_migrations.c.name))).scalars())
            assert await migrate(engines[0]) == []  # nothing left to do
            return sorted(names)
        finally:
            for engine in engines:
                await engine.dispose()

    assert asyncio.run(run()) == sorted(name for name, _ in MIGRATIONS)
