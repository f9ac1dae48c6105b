"""Read and write the server's database directly, for tests that check what is stored."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from riposte.store.database import create_engine


def sql(database_url: str, statement: str, **params: Any) -> list[Any]:
    """Run one statement on a fresh engine; the rows it returns, if any."""

    async def run() -> list[Any]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def response_row(database_url: str, response_id: str) -> Any:
    rows = sql(database_url, "SELECT id, status, history_base, deleted, owner, input_items, messages, response "
                             "FROM responses WHERE id = :id", id=response_id)
    return rows[0] if rows else None
