"""Stored responses: the response object, its full chained input, and the chat messages behind it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    # Chat messages as sent upstream (without the instructions) plus the final assistant turn,
    # so a `previous_response_id` chain replays exactly what the model saw.
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class ResponsePage:
    data: list[StoredResponse]
    has_more: bool


class ResponseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, stored: StoredResponse) -> None:
        """Insert or replace: a response is written once, at its end."""
        response = stored.response
        row = {
            "id": response["id"],
            "created_at": float(response["created_at"]),
            "model": response["model"],
            "status": response["status"],
            "previous_response_id": response.get("previous_response_id"),
            "response": orjson.dumps(response).decode(),
            "input_items": orjson.dumps(stored.input_items).decode(),
            "messages": orjson.dumps(stored.messages).decode(),
        }
        async with self._engine.begin() as connection:
            await connection.execute(_upsert(self._engine.dialect.name), row)

    async def get(self, response_id: str) -> StoredResponse | None:
        table = schema.responses
        query = select(table.c.response, table.c.input_items, table.c.messages).where(table.c.id == response_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return _stored(row) if row is not None else None

    async def delete(self, response_id: str) -> bool:
        table = schema.responses
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(table).where(table.c.id == response_id))
        return bool(result.rowcount)

    async def remember_unstored(self, response_id: str) -> None:
        """Keep only the id of a `store: false` response, so chaining from it can be refused clearly."""
        async with self._engine.begin() as connection:
            await connection.execute(schema.unstored_responses.insert().values(id=response_id, created_at=time.time()))

    async def was_unstored(self, response_id: str) -> bool:
        table = schema.unstored_responses
        async with self._engine.connect() as connection:
            found = (await connection.execute(select(table.c.id).where(table.c.id == response_id))).scalar()
        return found is not None

    async def list(self, *, after: str | None, limit: int, order: Order, model: str | None = None) -> ResponsePage:
        table = schema.responses
        query = select(table.c.response, table.c.input_items, table.c.messages)
        if model:
            query = query.where(table.c.model == model)
        async with self._engine.connect() as connection:
            if after is not None:
                cursor = (await connection.execute(select(table.c.seq).where(table.c.id == after))).scalar()
                if cursor is not None:
                    query = query.where(table.c.seq > cursor if order == "asc" else table.c.seq < cursor)
            ordering = table.c.seq.asc() if order == "asc" else table.c.seq.desc()
            rows = (await connection.execute(query.order_by(ordering).limit(limit + 1))).all()
        return ResponsePage(data=[_stored(r) for r in rows[:limit]], has_more=len(rows) > limit)


@lru_cache(maxsize=4)
def _upsert(dialect: str) -> Any:
    """One statement, not a delete and an insert (each statement is several round trips to the
    database driver, and this write is on every response's path), built once per dialect so that
    its compiled form is cached too."""
    table = schema.responses
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table)
    replaced = ("created_at", "model", "status", "previous_response_id", "response", "input_items", "messages")
    return statement.on_conflict_do_update(index_elements=[table.c.id],
                                           set_={name: statement.excluded[name] for name in replaced})


def _stored(row: Any) -> StoredResponse:
    return StoredResponse(
        response=orjson.loads(row[0]), input_items=orjson.loads(row[1]), messages=orjson.loads(row[2])
    )
