"""Stored responses: the response object, its chained input, and the chat messages behind it.

A turn's row is written twice: once, `in_progress`, when the turn starts (before the client sees
`response.created`), and once more when it ends. A response that continues another through
`previous_response_id` stores only what its own turn added and points at the response it extends
(`history_base`); its full history is rebuilt by walking that chain, so a chain of n turns takes
space linear in n. A deleted response that later responses extend is kept as a hidden tombstone,
and removed together with the last response that extends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import Select, bindparam, delete, false, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.store import schema
from riposte.store.background_jobs import end_job, forget_ended_job
from riposte.store.event_log import delete_events
from riposte.store.group_commit import GroupCommit, Statements
from riposte.store.loop_sqlite import LoopConnection
from riposte.store.ownership import OwnedStore
from riposte.store.traces import insert_trace, trace_insert, trace_row

logger = logging.getLogger(__name__)

Order = Literal["asc", "desc"]
Item = dict[str, Any]
_TABLE = schema.responses


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[Item]
    # Chat messages as sent upstream (without the instructions) plus the final assistant turn,
    # so a `previous_response_id` chain replays exactly what the model saw.
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class NewResponse:
    """A turn as it starts: its response object (`in_progress`) and its input items."""

    response: dict[str, Any]
    # The previous response's full input items and output, then this turn's own input items.
    input_items: list[Item]
    # The response whose stored history leads this turn's (None: store the turn's full history),
    # and how many leading input items and chat messages come from it.
    extends: str | None
    inherited_items: int
    inherited_messages: int


@dataclass(frozen=True)
class OpenResponse:
    """A response row written at the start of its turn, to be finished at its end."""

    id: str
    # The response whose history this row extends, or None when the row holds its full history.
    extends: str | None
    # How many of the turn's chat messages came from the extended response (they are not stored again).
    inherited_messages: int
    # A background turn's claim fence (store/background_jobs.py): its writes count only while it holds.
    fence: int | None = None


@dataclass(frozen=True)
class ResponsePage:
    data: list[dict[str, Any]]
    has_more: bool


class BrokenChainError(Exception):
    """A stored chain is missing a link: a bug or a hand-edited database, never a client's error."""


class ResponseStore(OwnedStore):
    """Responses of one project (OwnedStore); `owner` is the server instance running the turns."""

    def __init__(self, engine: AsyncEngine, owner: str | None = None, on_loop: LoopConnection | None = None) -> None:
        self._engine = engine
        # The server instance whose turns this store writes (see store/instances.py).
        self._owner = owner
        # The rows written at each turn's start and end, on the loop when they are small, SQLite
        # lets them (`on_loop`) and their turn is the only one running. Shared by every project's
        # view of the store (`owned_by` copies keep the references).
        self._writes: GroupCommit[_Creation | _Finish, OpenResponse | bool] = GroupCommit(
            engine, _write_turns, on_loop, _weight)
        self._running = _RunningTurns()

    async def create(self, new: NewResponse, also: Callable[[AsyncConnection], Awaitable[None]] | None = None, *,
                     client_waits: bool = False) -> OpenResponse:
        """Write the response `in_progress`, one statement. When it continues a response, only its
        own items are stored, provided that response still exists; the insert locks it (PostgreSQL)
        so a concurrent delete cannot remove it under the new link. If it was deleted meanwhile,
        the row is written with its full history instead. `also` writes more in the same transaction;
        without it, turns starting together share one transaction (store/group_commit.py), unless
        `client_waits`: a stream's client sees nothing before this row, so it is written at once
        when it can be."""
        response = new.response
        # A background response belongs to its job's lease (store/background_jobs.py), not to this process.
        owner = None if response.get("background") else self._owner
        row = {"id": response["id"], "created_at": float(response["created_at"]), "model": response["model"],
               "status": response["status"], "previous_response_id": response.get("previous_response_id"),
               "response": _dumps(response), "messages": "[]", "owner": owner,
               "project": self._access.project}
        previous = new.extends
        own_items = new.input_items[new.inherited_items:]
        if also is None:
            self._running.count += 1
            try:
                opened = await self._writes.write(_Creation(
                    index_rows=_index_rows(self._access.project, response["id"], own_items),
                    linked={**row, "input_items": _dumps(own_items), "history_base": previous} if previous else None,
                    # Built only when needed (a continuation whose base is gone stores its full history),
                    # and once.
                    whole=cache(lambda: {**row, "input_items": _dumps(new.input_items), "history_base": None}),
                    inherited_messages=new.inherited_messages), alone=self._running.count == 1,
                    client_waits=client_waits)
            except BaseException:
                self._running.count -= 1
                raise
            assert isinstance(opened, OpenResponse)
            return opened
        async with self._engine.begin() as connection:
            await also(connection)
            await _index_items(connection, self._access.project, response["id"], own_items)
            if previous is not None:
                linked = {**row, "input_items": _dumps(own_items), "history_base": previous}
                if (await connection.execute(_linked_insert(self._engine.dialect.name), linked)).first():
                    return OpenResponse(response["id"], previous, new.inherited_messages)
            whole = {**row, "input_items": _dumps(new.input_items), "history_base": None}
            await connection.execute(_TABLE.insert(), whole)
        return OpenResponse(response["id"], None, 0)

    async def finish(self, opened: OpenResponse, response: dict[str, Any], messages: list[dict[str, Any]],
                     trace: list[dict[str, Any]] | None = None) -> bool:
        """Record the turn's end, with its trace for the inspector when it has one. False when the
        response was deleted while it ran (it stays deleted). A background turn's job ends in the
        same transaction, so a stored end is never run again. Other turns ending together (and
        starting) share one transaction; a background turn's write, checked against its claim,
        goes alone."""
        if opened.fence is None:
            alone = self._running.count == 1
            self._running.count = max(0, self._running.count - 1)
            finished = await self._writes.write(_Finish(
                id=opened.id, project=self._access.project, status=response["status"], response=_dumps(response),
                messages=_dumps(messages[opened.inherited_messages:]),
                index_rows=_index_rows(self._access.project, opened.id, response["output"]),
                trace_row=trace_row(self._access.project, opened.id, trace) if trace is not None else None),
                alone=alone)
            return finished is True
        statement = (update(_TABLE).where(_TABLE.c.id == opened.id, _TABLE.c.deleted == false(),
                                          self._access.visible(_TABLE), _fenced(opened))
                     .values(status=response["status"], response=_dumps(response),
                             messages=_dumps(messages[opened.inherited_messages:]), owner=None))
        async with self._engine.begin() as connection:
            if not (await connection.execute(statement)).rowcount:
                return False
            await _index_items(connection, self._access.project, opened.id, response["output"])
            if trace is not None:
                await insert_trace(connection, self._access.project, opened.id, trace)
            if opened.fence is not None:
                await end_job(connection, opened.id, opened.fence)
        return True

    async def start_background(self, opened: OpenResponse, response: dict[str, Any]) -> bool:
        """A worker starts a queued (or retried) background turn: the row shows it `in_progress`.
        False when the claim no longer holds or the response has ended (cancelled meanwhile)."""
        statement = (update(_TABLE).where(_TABLE.c.id == opened.id, _TABLE.c.deleted == false(), _fenced(opened),
                                          _TABLE.c.status.in_(("queued", "in_progress")))
                     .values(status=response["status"], response=_dumps(response)))
        async with self._engine.begin() as connection:
            return bool((await connection.execute(statement)).rowcount)

    async def status(self, response_id: str) -> str | None:
        query = select(_TABLE.c.status).where(_TABLE.c.id == response_id, _TABLE.c.deleted == false(),
                                              self._access.visible(_TABLE))
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).scalar()
        return str(found) if found is not None else None

    async def get(self, response_id: str) -> StoredResponse | None:
        """The response with its full input items and messages, rebuilt along its chain."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_chain_query(), {"id": response_id})).all()
        if not rows or rows[-1].deleted or not self._access.sees(rows[-1].project):
            return None
        return _rebuilt(response_id, rows)

    async def get_response(self, response_id: str) -> dict[str, Any] | None:
        """Only the response object: what retrieving it returns."""
        query = select(_TABLE.c.response).where(_TABLE.c.id == response_id, _TABLE.c.deleted == false(),
                                                self._access.visible(_TABLE))
        async with self._engine.connect() as connection:
            found = (await connection.execute(query)).scalar()
        return orjson.loads(found) if found is not None else None

    async def delete(self, response_id: str) -> bool:
        """Hide the response at once; drop its row, and tombstones it was the last to extend, when no
        other response extends it."""
        hide = (update(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.deleted == false(),
                                     self._access.visible(_TABLE))
                .values(deleted=True, owner=None))
        async with self._engine.begin() as connection:
            if not (await connection.execute(hide)).rowcount:
                return False
            items = schema.response_items
            await connection.execute(delete(items).where(items.c.response_id == response_id))
            traces = schema.response_traces
            await connection.execute(delete(traces).where(traces.c.response_id == response_id))
            await delete_events(connection, response_id)
            await forget_ended_job(connection, response_id)
            await _purge(connection, response_id)
        return True

    async def find_items(self, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored responses' items (their own inputs and their outputs) by id; absent ids are left out."""
        if not item_ids:
            return {}
        table = schema.response_items
        query = select(table.c.item_id, table.c.item).where(table.c.item_id.in_(set(item_ids)),
                                                            self._access.visible(table))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row[0]: orjson.loads(row[1]) for row in rows}

    async def remember_unstored(self, response_id: str) -> None:
        """Keep only the id of a `store: false` response, so chaining from one can be refused clearly."""
        async with self._engine.begin() as connection:
            await connection.execute(schema.unstored_responses.insert().values(
                id=response_id, created_at=time.time(), project=self._access.project))

    async def was_unstored(self, response_id: str) -> bool:
        table = schema.unstored_responses
        async with self._engine.connect() as connection:
            query = select(table.c.id).where(table.c.id == response_id, self._access.visible(table))
            found = (await connection.execute(query)).scalar()
        return found is not None

    async def fail_in_progress(self, owners: Sequence[str], message: str) -> list[str]:
        """Mark `failed` the `in_progress` responses of these (dead) instances, and of instances no
        longer registered at all; returns their ids."""
        registered = select(schema.server_instances.c.id)
        orphaned = or_(_TABLE.c.owner.in_(list(owners)), _TABLE.c.owner.not_in(registered))
        # Only a turn in flight has an owner, so the owner index finds them without a table scan.
        query = select(_TABLE.c.id, _TABLE.c.owner, _TABLE.c.response).where(
            _TABLE.c.owner.is_not(None), _TABLE.c.status == "in_progress", orphaned)
        failed: list[str] = []
        async with self._engine.begin() as connection:
            for response_id, owner, text in (await connection.execute(query)).all():
                response = _as_failed(orjson.loads(text), message)
                # Still owned by the dead instance: a live one that finished it meanwhile wins.
                statement = (update(_TABLE).where(_TABLE.c.id == response_id, _TABLE.c.owner == owner)
                             .values(status="failed", response=_dumps(response), owner=None))
                if (await connection.execute(statement)).rowcount:
                    failed.append(response_id)
        return failed

    async def list(self, *, after: str | None, limit: int, order: Order, model: str | None = None) -> ResponsePage:
        query = select(_TABLE.c.response).where(_TABLE.c.deleted == false(), self._access.visible(_TABLE))
        if model:
            query = query.where(_TABLE.c.model == model)
        async with self._engine.connect() as connection:
            if after is not None:
                cursor_query = select(_TABLE.c.seq).where(_TABLE.c.id == after, self._access.visible(_TABLE))
                cursor = (await connection.execute(cursor_query)).scalar()
                if cursor is not None:
                    query = query.where(_TABLE.c.seq > cursor if order == "asc" else _TABLE.c.seq < cursor)
            ordering = _TABLE.c.seq.asc() if order == "asc" else _TABLE.c.seq.desc()
            rows = (await connection.execute(query.order_by(ordering).limit(limit + 1))).scalars().all()
        return ResponsePage(data=[orjson.loads(row) for row in rows[:limit]], has_more=len(rows) > limit)

def _fenced(opened: OpenResponse) -> Any:
    """True while a background turn's claim still holds; always true for a turn run by its request."""
    if opened.fence is None:
        return true()
    jobs = schema.background_jobs
    return (select(jobs.c.response_id)
            .where(jobs.c.response_id == opened.id, jobs.c.fence == opened.fence, jobs.c.state == "running")
            # PostgreSQL: wait for a claim in progress, then see its new fence.
            .with_for_update(read=True).exists())


def _as_failed(response: dict[str, Any], message: str) -> dict[str, Any]:
    return {**response, "status": "failed", "error": {"code": "server_error", "message": message}}


async def _index_items(
    connection: AsyncConnection, project: str, response_id: str, items: list[dict[str, Any]]
) -> None:
    rows = _index_rows(project, response_id, items)
    if rows:
        await connection.execute(_insert_new_items(connection.dialect.name), rows)


def _index_rows(project: str, response_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the item index; the first response to hold an id keeps it (a client re-sending an
    item does not move it)."""
    return [{"project": project, "item_id": item["id"], "response_id": response_id,
             "item": orjson.dumps(item).decode()}
            for item in items if isinstance(item.get("id"), str)]


class _RunningTurns:
    """Turns between their rows' start and end in this process. A row is written on the loop only
    when its turn runs alone: then the request waiting for it is the only one, and there is nothing
    to batch it with. With others running, the writes of all go together through the database's
    thread, beside the loop: one on the loop per pass, as first tried, cost 7% of the throughput of
    16 concurrent non-streaming requests (more commits, each on the loop's core)."""

    def __init__(self) -> None:
        self.count = 0


@dataclass(frozen=True)
class _Creation:
    """One turn's `in_progress` row, ready for a group commit."""

    index_rows: list[dict[str, Any]]
    # The row that stores only the turn's own items, linked to the response it extends (None: the
    # turn extends nothing); `whole` is the row with its full history.
    linked: dict[str, Any] | None
    whole: Callable[[], dict[str, Any]]
    inherited_messages: int


@dataclass(frozen=True)
class _Finish:
    """One turn's end: its final response object and messages, and its output items to index."""

    id: str
    # The project of the store view that created the row (the only one that finishes it).
    project: str
    status: str
    response: str
    messages: str
    index_rows: list[dict[str, Any]]
    trace_row: dict[str, Any] | None


def _weight(write: _Creation | _Finish) -> int:
    """About the bytes `write` stores. A continuation is weighed by its own items: should its base
    be deleted meanwhile (rare), the row it writes instead holds the whole history."""
    if isinstance(write, _Creation):
        row = write.linked if write.linked is not None else write.whole()
        return _row_bytes(row) + _row_bytes(*write.index_rows)
    trace = _row_bytes(write.trace_row) if write.trace_row is not None else 0
    return len(write.response) + len(write.messages) + _row_bytes(*write.index_rows) + trace


def _row_bytes(*rows: dict[str, Any]) -> int:
    return sum(len(value) for row in rows for value in row.values() if isinstance(value, str | bytes))


def _write_turns(statements: Statements, writes: Sequence[_Creation | _Finish]) -> list[OpenResponse | bool]:
    """Turns starting and turns ending, in one transaction, in the order they were asked for."""
    return [_write_creation(statements, write) if isinstance(write, _Creation) else _write_finish(statements, write)
            for write in writes]


def _write_creation(statements: Statements, creation: _Creation) -> OpenResponse:
    """A continuation's row links to its base if that is still there (the insert selects it);
    otherwise, and for a turn that continues nothing, the row holds the full history."""
    _index(statements, creation.index_rows)
    linked = creation.linked
    if linked is not None and statements.execute(_linked_insert(statements.dialect), linked).first:
        return OpenResponse(linked["id"], linked["history_base"], creation.inherited_messages)
    whole = creation.whole()
    statements.execute(_plain_insert(), whole)
    return OpenResponse(whole["id"], None, 0)


def _write_finish(statements: Statements, finish: _Finish) -> bool:
    """False when the row was deleted while its turn ran: it stays deleted, its output unindexed."""
    updated = statements.execute(_finish_update(), {
        "finish_id": finish.id, "finish_project": finish.project, "finish_status": finish.status,
        "finish_response": finish.response, "finish_messages": finish.messages})
    if not updated.rowcount:
        return False
    _index(statements, finish.index_rows)
    if finish.trace_row is not None:
        statements.execute(trace_insert(), finish.trace_row)
    return True


def _index(statements: Statements, rows: list[dict[str, Any]]) -> None:
    if rows:
        statements.execute_many(_insert_new_items(statements.dialect), rows)


_ROW_COLUMNS = ("id", "created_at", "model", "status", "previous_response_id", "response", "input_items",
                "messages", "owner", "project", "history_base")


@lru_cache(maxsize=1)
def _plain_insert() -> Any:
    """The columns a turn's row sets, named, so the statement is the same whoever runs it."""
    return _TABLE.insert().values({name: bindparam(name) for name in _ROW_COLUMNS})


@lru_cache(maxsize=1)
def _finish_update() -> Any:
    return (update(_TABLE)
            .where(_TABLE.c.id == bindparam("finish_id"), _TABLE.c.deleted == false(),
                   _TABLE.c.project == bindparam("finish_project"))
            .values(status=bindparam("finish_status"), response=bindparam("finish_response"),
                    messages=bindparam("finish_messages"), owner=None))


@lru_cache(maxsize=4)
def _insert_new_items(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(schema.response_items).on_conflict_do_nothing(index_elements=["project", "item_id"])


@lru_cache(maxsize=4)
def _linked_insert(dialect: str) -> Any:
    """INSERT ... SELECT from the extended row, so the row is written only if that one is there and
    not deleted. FOR SHARE (PostgreSQL; SQLite has one writer at a time) holds it until commit."""
    base = _TABLE.alias("base")
    names = ("id", "created_at", "model", "status", "previous_response_id", "response", "input_items",
             "messages", "owner", "project", "history_base", "deleted")
    values: list[Any] = [bindparam(name) for name in names[:-2]]
    # A chain never links across projects (an admin continuing another project's response stores
    # its full history instead).
    source: Select[Any] = (select(*values, base.c.id, literal(False))
                           .where(base.c.id == bindparam("history_base"), base.c.deleted == false(),
                                  base.c.project == bindparam("project")))
    if dialect == "postgresql":
        source = source.with_for_update(read=True)
    return _TABLE.insert().from_select(list(names), source).returning(_TABLE.c.id)


@lru_cache(maxsize=1)
def _chain_query() -> Any:
    """The row and every row it extends, the requested one last: one recursive query."""
    start = (select(_TABLE.c.id, _TABLE.c.history_base, literal(0).label("depth"))
             .where(_TABLE.c.id == bindparam("id")).cte("chain", recursive=True))
    link = _TABLE.alias("link")
    chain = start.union_all(select(link.c.id, link.c.history_base, start.c.depth + 1)
                            .where(link.c.id == start.c.history_base))
    return (select(_TABLE.c.id, _TABLE.c.history_base, _TABLE.c.deleted, _TABLE.c.response, _TABLE.c.input_items,
                   _TABLE.c.messages, _TABLE.c.project)
            .join_from(chain, _TABLE, _TABLE.c.id == chain.c.id).order_by(chain.c.depth.desc()))


def _rebuilt(response_id: str, rows: Sequence[Any]) -> StoredResponse:
    if rows[0].history_base is not None:
        raise BrokenChainError(f"response {response_id} extends {rows[0].history_base}, which is not stored")
    items: list[Item] = []
    messages: list[dict[str, Any]] = []
    previous_output: list[Item] = []
    response: dict[str, Any] = {}
    for row in rows:
        response = orjson.loads(row.response)
        items += previous_output
        items += orjson.loads(row.input_items)
        messages += orjson.loads(row.messages)
        previous_output = response["output"]
    return StoredResponse(response=response, input_items=items, messages=messages)


async def _purge(connection: AsyncConnection, response_id: str) -> None:
    """Remove a deleted row nothing extends any more, then, the same way, the tombstones above it."""
    child = _TABLE.alias("child")
    extended = select(child.c.id).where(child.c.history_base == bindparam("id")).exists()
    statement = (delete(_TABLE).where(_TABLE.c.id == bindparam("id"), _TABLE.c.deleted == true(), ~extended)
                 .returning(_TABLE.c.history_base))
    current: str | None = response_id
    while current is not None:
        removed = (await connection.execute(statement, {"id": current})).first()
        current = removed[0] if removed is not None else None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()

