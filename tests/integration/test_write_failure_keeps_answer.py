"""When the database refuses the final write, the client still gets the answer the upstream gave
(streaming and not), on SQLite and PostgreSQL. The refusal is a real one: a trigger that aborts
every write of a completed response."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest
from sqlalchemy import text

from riposte.config import ProviderConfig
from riposte.store.database import create_engine
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply

SQLITE_TRIGGERS = [
    "CREATE TRIGGER refuse_insert BEFORE INSERT ON responses WHEN NEW.status = 'completed' "
    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    "CREATE TRIGGER refuse_update BEFORE UPDATE ON responses WHEN NEW.status = 'completed' "
    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
]
POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION refuse_completed() RETURNS trigger AS $$ BEGIN "
    "IF NEW.status = 'completed' THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$ "
    "LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_completed BEFORE INSERT OR UPDATE ON responses FOR EACH ROW "
    "EXECUTE FUNCTION refuse_completed()",
]
DROP = {"sqlite": ["DROP TRIGGER refuse_insert", "DROP TRIGGER refuse_update"],
        "postgresql": ["DROP TRIGGER refuse_completed ON responses"]}


def run_sql(database_url: str, statements: list[str] | None = None, *, drop: bool = False) -> None:
    async def execute() -> None:
        engine = create_engine(database_url)
        try:
            dialect = engine.dialect.name
            chosen = DROP[dialect] if drop else SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS
            async with engine.begin() as connection:
                for statement in statements or chosen:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, execute()).result()


@pytest.mark.parametrize("stream", [False, True])
def test_a_refused_write_does_not_cost_the_client_the_answer(
    make_server: ServerFactory, upstream: ScriptedUpstream, database_url: str, stream: bool
) -> None:
    server = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
    run_sql(database_url)
    try:
        upstream.enqueue(text_reply("The answer is 42."))
        response = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "q", "stream": stream},
                              timeout=30)
        assert response.status_code == 200, response.text
        if stream:
            events = [orjson.loads(line[6:]) for line in response.text.splitlines()
                      if line.startswith("data: ") and line != "data: [DONE]"]
            final = events[-1]["response"]
            assert events[-1]["type"] == "response.completed"
        else:
            final = response.json()
        assert final["output"][0]["content"][0]["text"] == "The answer is 42."
    finally:
        run_sql(database_url, drop=True)
    upstream.enqueue(text_reply("stored again"))
    healthy = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "q"}, timeout=30)
    assert httpx.get(f"{server.base_url}/responses/{healthy.json()['id']}", timeout=30).status_code == 200
