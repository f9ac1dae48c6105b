"""Stored conversations and their items, in an explicit per-conversation order.

Appends are serialized per conversation: an append first bumps the conversation's
`next_position`, and that UPDATE holds the row's write lock (PostgreSQL) or the database's write
lock (SQLite) until the append commits. Positions are therefore handed out in commit order, with
no gaps inside one append, and two racing turns cannot interleave or lose items.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, delete, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.store import schema
from riposte.store.ownership import OwnedStore, Owner

Item = dict[str, Any]
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class Conversation:
    id: str
    created_at: int
    metadata: dict[str, str]

    def as_object(self) -> dict[str, Any]:
        """The wire form, as the SDK's `Conversation` type parses it."""
        return {"id": self.id, "object": "conversation", "created_at": self.created_at, "metadata": self.metadata}


@dataclass(frozen=True)
class ItemPage:
    data: list[Item]
    has_more: bool


class ItemIdConflict(Exception):
    """An appended item reuses an id the conversation already holds (or repeats one in the batch)."""

    def __init__(self, item_id: str) -> None:
        super().__init__(item_id)
        self.item_id = item_id


class ConversationStore(OwnedStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def _owns(self, conversation_id: str) -> ColumnElement[bool]:
        """Items are the conversation's project's: a condition for queries on conversation_items."""
        if self._access.sees_all:
            return true()
        table = schema.conversations
        return exists().where(table.c.id == conversation_id, self._access.visible(table))

    async def create(self, conversation: Conversation, items: Sequence[Item]) -> None:
        row = {"id": conversation.id, "created_at": float(conversation.created_at),
               "metadata": orjson.dumps(conversation.metadata).decode(), "next_position": 0,
               "project": self._access.project}
        async with self._engine.begin() as connection:
            await connection.execute(schema.conversations.insert().values(**row))
            if items:
                await _append(connection, conversation.id, items, self._access)

    async def get(self, conversation_id: str) -> Conversation | None:
        table = schema.conversations
        query = (select(table.c.id, table.c.created_at, table.c.metadata)
                 .where(table.c.id == conversation_id, self._access.visible(table)))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return Conversation(id=row[0], created_at=int(row[1]), metadata=orjson.loads(row[2]))

    async def update_metadata(self, conversation_id: str, metadata: dict[str, str]) -> Conversation | None:
        table = schema.conversations
        statement = (update(table).where(table.c.id == conversation_id, self._access.visible(table))
                     .values(metadata=orjson.dumps(metadata).decode()))
        async with self._engine.begin() as connection:
            changed = (await connection.execute(statement)).rowcount
        return await self.get(conversation_id) if changed else None

    async def delete(self, conversation_id: str) -> bool:
        """Delete the conversation with its items, in one transaction."""
        items = schema.conversation_items
        table = schema.conversations
        async with self._engine.begin() as connection:
            result = await connection.execute(delete(table).where(table.c.id == conversation_id,
                                                                  self._access.visible(table)))
            if result.rowcount:
                await connection.execute(delete(items).where(items.c.conversation_id == conversation_id))
        return bool(result.rowcount)

    async def append(self, conversation_id: str, items: Sequence[Item]) -> bool:
        """Append items, in order and atomically. False when the conversation does not exist.

        Raises ItemIdConflict, appending nothing, when an item id is already taken.
        """
        async with self._engine.begin() as connection:
            return await _append(connection, conversation_id, items, self._access)

    async def all_items(self, conversation_id: str) -> list[Item]:
        """Every item, oldest first: the history a turn in this conversation replays."""
        table = schema.conversation_items
        query = (select(table.c.item).where(table.c.conversation_id == conversation_id, self._owns(conversation_id))
                 .order_by(table.c.position.asc()))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).scalars().all()
        return [orjson.loads(row) for row in rows]

    async def list_items(self, conversation_id: str, *, after: str | None, limit: int, order: Order) -> ItemPage:
        """One page of items. `after` must be an item of this conversation (see `get_item`)."""
        table = schema.conversation_items
        query = select(table.c.item).where(table.c.conversation_id == conversation_id, self._owns(conversation_id))
        async with self._engine.connect() as connection:
            if after is not None:
                cursor = await _position(connection, conversation_id, after)
                if cursor is not None:
                    query = query.where(table.c.position > cursor if order == "asc" else table.c.position < cursor)
            ordering = table.c.position.asc() if order == "asc" else table.c.position.desc()
            rows = (await connection.execute(query.order_by(ordering).limit(limit + 1))).scalars().all()
        return ItemPage(data=[orjson.loads(row) for row in rows[:limit]], has_more=len(rows) > limit)

    async def get_item(self, conversation_id: str, item_id: str) -> Item | None:
        table = schema.conversation_items
        query = select(table.c.item).where(table.c.conversation_id == conversation_id, table.c.id == item_id,
                                           self._owns(conversation_id))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).scalar()
        return orjson.loads(row) if row is not None else None

    async def find_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        """Items of any conversation this owner sees, by id (for `item_reference`); absent ids are left out."""
        if not item_ids:
            return {}
        table = schema.conversation_items
        owners = schema.conversations
        query = (select(table.c.id, table.c.item).join(owners, owners.c.id == table.c.conversation_id)
                 .where(table.c.id.in_(set(item_ids)), self._access.visible(owners)))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row[0]: orjson.loads(row[1]) for row in rows}

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        table = schema.conversation_items
        statement = delete(table).where(table.c.conversation_id == conversation_id, table.c.id == item_id,
                                        self._owns(conversation_id))
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def taken_item_ids(self, conversation_id: str, item_ids: Sequence[str]) -> set[str]:
        """Which of these ids the conversation already holds."""
        if not item_ids:
            return set()
        table = schema.conversation_items
        query = select(table.c.id).where(table.c.conversation_id == conversation_id, table.c.id.in_(item_ids),
                                         self._owns(conversation_id))
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())


async def _append(connection: AsyncConnection, conversation_id: str, items: Sequence[Item], owner: Owner) -> bool:
    first = await _reserve_positions(connection, conversation_id, len(items), owner)
    if first is None:
        return False
    if not items:
        return True
    await _reject_taken_ids(connection, conversation_id, items)
    now = time.time()
    rows = [{"conversation_id": conversation_id, "position": first + offset, "id": item["id"], "created_at": now,
             "item": orjson.dumps(item).decode()} for offset, item in enumerate(items)]
    await connection.execute(schema.conversation_items.insert(), rows)
    return True


async def _reserve_positions(connection: AsyncConnection, conversation_id: str, count: int,
                             owner: Owner) -> int | None:
    """Bump the counter first, so the lock is taken before anything is read (no SQLite lock upgrade)."""
    table = schema.conversations
    bumped = (update(table).where(table.c.id == conversation_id, owner.visible(table))
              .values(next_position=table.c.next_position + count).returning(table.c.next_position))
    end = (await connection.execute(bumped)).scalar()
    return None if end is None else int(end) - count


async def _reject_taken_ids(connection: AsyncConnection, conversation_id: str, items: Sequence[Item]) -> None:
    seen: set[str] = set()
    for item in items:
        if item["id"] in seen:
            raise ItemIdConflict(item["id"])
        seen.add(item["id"])
    table = schema.conversation_items
    query = select(table.c.id).where(table.c.conversation_id == conversation_id, table.c.id.in_(seen)).limit(1)
    taken = (await connection.execute(query)).scalar()
    if taken is not None:
        raise ItemIdConflict(taken)


async def _position(connection: AsyncConnection, conversation_id: str, item_id: str) -> int | None:
    table = schema.conversation_items
    query = select(table.c.position).where(table.c.conversation_id == conversation_id, table.c.id == item_id)
    position = (await connection.execute(query)).scalar()
    return None if position is None else int(position)
