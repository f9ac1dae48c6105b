"""Stored turn traces (engine/turn_trace.py): written inside the turn's final store write, read by
the web inspector, and dropped once older than the configured retention."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.store import schema
from riposte.store.ownership import OwnedStore

_TABLE = schema.response_traces
Step = dict[str, Any]


async def insert_trace(connection: AsyncConnection, project: str, response_id: str, steps: list[Step]) -> None:
    await connection.execute(trace_insert(), trace_row(project, response_id, steps))


def trace_row(project: str, response_id: str, steps: list[Step]) -> dict[str, Any]:
    return {"response_id": response_id, "project": project, "created_at": time.time(),
            "steps": orjson.dumps(steps).decode()}


@lru_cache(maxsize=1)
def trace_insert() -> Any:
    """Built once, so a group commit (store/group_commit.py) compiles it once."""
    return _TABLE.insert().values({name: bindparam(name) for name in ("response_id", "project", "created_at", "steps")})


class TraceStore(OwnedStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, response_id: str) -> list[Step] | None:
        query = select(_TABLE.c.steps).where(_TABLE.c.response_id == response_id, self._access.visible(_TABLE))
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).scalar()
        return orjson.loads(found) if found is not None else None

    async def purge_older_than(self, seconds: float) -> int:
        """Drop traces older than `seconds` (every project's: the server's own housekeeping)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(_TABLE).where(_TABLE.c.created_at < time.time() - seconds))
        return int(result.rowcount or 0)
