"""Migrations are named, ordered, recorded, idempotent, and safe when workers start together."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from sqlalchemy import Connection, MetaData, Table, select, text

from riposte.config import ProviderConfig
from riposte.store import schema
from riposte.store.database import create_engine, migrate
from riposte.store.migrations import MIGRATIONS
from tests.conftest import ADMIN_URL, run_admin_sql, scratch_postgres_database, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.sdk import sdk


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


_ADDED_BY_0005 = {"responses": {"history_base", "deleted", "owner"}, "vector_store_files": {"owner", "attempts"}}
# Added after 0005: the API keys table (0006) and the owning project of each object (0007).
_TABLES_ADDED_LATER = {"server_instances", "api_keys", "response_items"}
_ADDED_BY_0007 = set(schema.OWNED_TABLE_NAMES)


def _create_pre_0005_schema(connection: Connection) -> None:
    """The tables as migrations 0001-0004 left them, recorded as applied."""
    old = MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name in _TABLES_ADDED_LATER:
            continue
        skipped = _ADDED_BY_0005.get(table.name, set()) | ({"project"} if table.name in _ADDED_BY_0007 else set())
        Table(table.name, old, *[column._copy() for column in table.columns if column.name not in skipped])
    old.create_all(connection)
    for name, _ in MIGRATIONS[:4]:
        connection.execute(schema.schema_migrations.insert().values(name=name, applied_at=time.time()))


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"riposte_old_{secrets.token_hex(4)}"
    run_admin_sql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    finally:
        run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_from_before_chain_storage_upgrades_and_its_responses_continue(
    fresh_database_url: str, tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "one"},
               {"role": "user", "content": "second"}, {"role": "assistant", "content": "two"}]
    items = [{"id": "msg_a", "type": "message", "role": "user", "status": "completed",
              "content": [{"type": "input_text", "text": "first"}]},
             {"id": "msg_b", "type": "message", "role": "assistant", "status": "completed",
              "content": [{"type": "output_text", "text": "one", "annotations": []}]},
             {"id": "msg_c", "type": "message", "role": "user", "status": "completed",
              "content": [{"type": "input_text", "text": "second"}]}]
    output = [{"id": "msg_d", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "two", "annotations": [], "logprobs": []}]}]

    async def prepare() -> None:
        engine = create_engine(fresh_database_url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_create_pre_0005_schema)
                await connection.execute(text(
                    "INSERT INTO responses (id, created_at, model, status, previous_response_id, response, "
                    "input_items, messages) VALUES ('resp_old', 1, 'fake/m', 'completed', 'resp_older', :response, "
                    ":items, :messages)"),
                    {"response": orjson.dumps(_old_response(output)).decode(), "items": orjson.dumps(items).decode(),
                     "messages": orjson.dumps(history).decode()})
            assert await migrate(engine) == [name for name, _ in MIGRATIONS[4:]]
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    with server_factory(tmp_path / "data", fresh_database_url) as factory:
        server = factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
        client = sdk(server)
        assert client.responses.retrieve("resp_old").status == "completed"
        listed = client.responses.input_items.list("resp_old", order="asc").data
        assert [item.id for item in listed] == ["msg_a", "msg_b", "msg_c"]
        upstream.enqueue(text_reply("three"))
        follow_up = client.responses.create(model="fake/m", input="third", previous_response_id="resp_old")
        assert upstream.requests[-1]["messages"] == [*history, {"role": "user", "content": "third"}]
        chained = client.responses.input_items.list(follow_up.id, order="asc", limit=100).data
        assert [item.id for item in chained][:4] == ["msg_a", "msg_b", "msg_c", "msg_d"]
        # Items stored before the item index existed resolve as item_reference too (0006 backfills).
        upstream.enqueue(text_reply("four"))
        client.responses.create(model="fake/m", input=[{"type": "item_reference", "id": "msg_a"}])
        assert upstream.requests[-1]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "first"}]}]


def _old_response(output: list[dict[str, object]]) -> dict[str, object]:
    return {"id": "resp_old", "object": "response", "created_at": 1, "status": "completed", "model": "fake/m",
            "output": output, "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
            "parallel_tool_calls": True, "temperature": None, "tool_choice": "auto", "tools": [], "top_p": None,
            "previous_response_id": "resp_older"}


def test_a_row_looked_up_by_id_in_its_project_is_found_by_its_id_on_a_new_postgres_database() -> None:
    """Before the first ANALYZE, PostgreSQL's plan for `id = $1 AND project = $2` under an index on
    the project alone read every row of the project (all of them, on a single-team server), and
    a prepared statement keeps its plan. The plan must use the id, as a generic plan would."""
    with scratch_postgres_database("riposte_plans") as url:
        async def plans() -> dict[str, str]:
            engine = create_engine(url)
            try:
                await migrate(engine)
            finally:
                await engine.dispose()
            connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
            try:
                await connection.execute("SET plan_cache_mode = force_generic_plan")
                found: dict[str, str] = {}
                for name in schema.OWNED_TABLE_NAMES:
                    await connection.execute(
                        f"PREPARE by_id_{name}(text, text) AS SELECT id FROM {name} WHERE id = $1 AND project = $2")
                    rows = await connection.fetch(f"EXPLAIN EXECUTE by_id_{name}('x', 'default')")
                    found[name] = "\n".join(row[0] for row in rows)
                return found
            finally:
                await connection.close()

        for name, plan in asyncio.run(plans()).items():
            [condition] = [line for line in plan.splitlines() if "Index Cond" in line]
            assert re.search(r"\bid\b", condition), (name, plan)
