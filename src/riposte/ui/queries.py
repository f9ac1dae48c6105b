"""Read-only queries the inspector needs and the API does not offer: filtered response listing,
conversation listing, which turn added each conversation item. Each is limited to what the
viewer's project may see (store/ownership.py), exactly as the API's stores are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.store import schema
from riposte.store.ownership import Owner

_RESPONSES = schema.responses


@dataclass(frozen=True)
class ResponseFilter:
    model: str | None = None
    status: str | None = None
    conversation: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    # Paging: rows listed before this sequence number (newest first).
    before_seq: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class ListedResponse:
    seq: int
    response: dict[str, Any]


@dataclass(frozen=True)
class ListedConversation:
    id: str
    created_at: float
    metadata: dict[str, str]
    items: int


def _conditions(owner: Owner, wanted: ResponseFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [_RESPONSES.c.deleted == false(), owner.visible(_RESPONSES)]
    if wanted.model:
        conditions.append(_RESPONSES.c.model == wanted.model)
    if wanted.status:
        conditions.append(_RESPONSES.c.status == wanted.status)
    if wanted.since is not None:
        conditions.append(_RESPONSES.c.created_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(_RESPONSES.c.created_at < wanted.until)
    if wanted.conversation:
        # The stored object is orjson's compact text, so the conversation reads exactly this way.
        marker = orjson.dumps({"conversation": {"id": wanted.conversation}}).decode()[1:-1]
        conditions.append(_RESPONSES.c.response.contains(marker, autoescape=True))
    if wanted.text:
        # Case-insensitive on both backends; the row's own input items and its output.
        conditions.append(or_(_RESPONSES.c.input_items.icontains(wanted.text, autoescape=True),
                              _RESPONSES.c.response.icontains(wanted.text, autoescape=True)))
    if wanted.before_seq is not None:
        conditions.append(_RESPONSES.c.seq < wanted.before_seq)
    return conditions


async def list_responses(
    engine: AsyncEngine, owner: Owner, wanted: ResponseFilter
) -> tuple[list[ListedResponse], bool]:
    query = (select(_RESPONSES.c.seq, _RESPONSES.c.response).where(and_(*_conditions(owner, wanted)))
             .order_by(_RESPONSES.c.seq.desc()).limit(wanted.limit + 1))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    listed = [ListedResponse(seq=row.seq, response=orjson.loads(row.response)) for row in rows[:wanted.limit]]
    return listed, len(rows) > wanted.limit


async def model_names(engine: AsyncEngine, owner: Owner) -> list[str]:
    query = (select(_RESPONSES.c.model).where(_RESPONSES.c.deleted == false(), owner.visible(_RESPONSES))
             .distinct().order_by(_RESPONSES.c.model).limit(200))
    async with engine.connect() as connection:
        return list((await connection.execute(query)).scalars().all())


async def list_conversations(engine: AsyncEngine, owner: Owner, limit: int = 100) -> list[ListedConversation]:
    table, items = schema.conversations, schema.conversation_items

    count = (select(func.count()).where(items.c.conversation_id == table.c.id)
             .correlate(table).scalar_subquery())
    query = (select(table.c.id, table.c.created_at, table.c.metadata, count.label("items"))
             .where(owner.visible(table)).order_by(table.c.created_at.desc(), table.c.id).limit(limit))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [ListedConversation(id=row.id, created_at=row.created_at, metadata=orjson.loads(row.metadata),
                               items=int(row.items)) for row in rows]


async def responses_holding(engine: AsyncEngine, owner: Owner, item_ids: Sequence[str]) -> dict[str, str]:
    """item id -> the stored response whose turn added it (its own input or its output)."""
    if not item_ids:
        return {}
    table = schema.response_items
    query = select(table.c.item_id, table.c.response_id).where(table.c.item_id.in_(set(item_ids)),
                                                               owner.visible(table))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {row[0]: row[1] for row in rows}


async def chain_ids(engine: AsyncEngine, owner: Owner, response_id: str) -> tuple[list[str], list[str]]:
    """The previous_response_id chain around a response: its ancestors (oldest first) and the
    responses that continue it directly."""
    ancestors: list[str] = []
    current: str | None = response_id
    async with engine.connect() as connection:
        for _ in range(200):  # a chain longer than this is shown cut
            query = select(_RESPONSES.c.previous_response_id).where(_RESPONSES.c.id == current,
                                                                   owner.visible(_RESPONSES))
            current = (await connection.execute(query)).scalar()
            if current is None:
                break
            ancestors.append(current)
        children = (await connection.execute(
            select(_RESPONSES.c.id).where(_RESPONSES.c.previous_response_id == response_id,
                                          _RESPONSES.c.deleted == false(), owner.visible(_RESPONSES))
            .order_by(_RESPONSES.c.seq).limit(20))).scalars().all()
    return list(reversed(ancestors)), list(children)
