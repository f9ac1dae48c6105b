"""Cursor pagination over a table with a `seq` column: `after`/`before` ids, `order`, `limit`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    has_more: bool


async def fetch_page(
    connection: AsyncConnection, table: Table, query: Select[Any], id_column: ColumnElement[Any], page: PageRequest,
    scope: Sequence[ColumnElement[bool]] = (),
) -> Page:
    """Rows of `query` (which selects from `table`) in `seq` order, one page of them.

    `before` gives the previous page: the `limit` rows just before the cursor (in `order`), with
    `has_more` saying whether more come before them. Cursor ids are looked up in `id_column` among
    rows matching `scope` (ids may repeat across parents, e.g. one file in several vector stores).
    An unknown cursor id is ignored rather than rejected, as OpenAI's list endpoints do.
    """
    seq = table.c.seq
    newest_first = page.order == "desc"
    backwards = False  # `before`: the page just before the cursor, read from it backwards
    if page.after is not None:
        cursor = await _seq_of(connection, table, id_column, page.after, scope)
        if cursor is not None:
            query = query.where(seq < cursor if newest_first else seq > cursor)
    if page.before is not None:
        cursor = await _seq_of(connection, table, id_column, page.before, scope)
        if cursor is not None:
            query = query.where(seq > cursor if newest_first else seq < cursor)
            backwards = True
    ordering = seq.desc() if newest_first != backwards else seq.asc()
    rows = (await connection.execute(query.order_by(ordering).limit(page.limit + 1))).all()
    kept = rows[: page.limit]
    return Page(rows=kept[::-1] if backwards else kept, has_more=len(rows) > page.limit)


async def _seq_of(connection: AsyncConnection, table: Table, id_column: ColumnElement[Any], value: str,
                  scope: Sequence[ColumnElement[bool]]) -> int | None:
    found = (await connection.execute(select(table.c.seq).where(id_column == value, *scope))).scalar()
    return int(found) if found is not None else None

