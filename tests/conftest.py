"""Shared fixtures: a real Riposte server per test on a loopback port, on SQLite or PostgreSQL.

PostgreSQL is the local server (trust auth); each test session gets a database of its own,
dropped at the end. Set RIPOSTE_TEST_POSTGRES_ADMIN_URL to point elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.config import InferenceMode, ProviderConfig, Settings
from riposte.store.database import create_engine, migrate
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream

REPO = Path(__file__).resolve().parent.parent
SEED_RECORDINGS = REPO / "examples" / "recordings"
REFERENCE_RECORDINGS = REPO / "tests" / "recordings" / "reference"

ADMIN_URL = os.environ.get("RIPOSTE_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

ServerFactory = Callable[..., RunningServer]

# Real MCP servers and a Riposte configured for them (tests/integration/mcp_fixtures.py).
pytest_plugins = ["tests.integration.mcp_fixtures"]


def run_admin_sql(admin_url: str, sql: str) -> None:
    """Run one statement on a PostgreSQL admin connection, on a loop of its own so that it also
    works from inside async fixtures and tests."""

    async def execute() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, execute()).result()


@contextmanager
def scratch_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the length of the block; its asyncpg URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    run_admin_sql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    with scratch_postgres_database("riposte_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test that takes this runs once per storage backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
async def migrated_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with Riposte's schema, for tests of the store on its own."""
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@contextmanager
def server_factory(data_dir: Path, database_url: str) -> Iterator[ServerFactory]:
    """A factory of servers on one database, each stopped when the block ends."""
    started: list[RunningServer] = []

    def factory(**overrides: Any) -> RunningServer:
        values: dict[str, Any] = {"data_dir": data_dir, "database_url": database_url}
        values.update(overrides)
        server = RunningServer(Settings(**values)).start()
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def make_server(tmp_path: Path, database_url: str) -> Iterator[ServerFactory]:
    """Start a server with the given settings overrides; stopped when the test ends."""
    with server_factory(tmp_path / "data", database_url) as factory:
        yield factory


@pytest.fixture
def fake_server(make_server: ServerFactory, upstream: ScriptedUpstream) -> RunningServer:
    """A live-mode server whose only provider, `fake`, is the scripted upstream."""
    return make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])


@pytest.fixture
def seed_server(make_server: ServerFactory) -> RunningServer:
    """A replay-mode server over the five seed recordings shipped in examples/."""
    return make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=SEED_RECORDINGS,
                       providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])


@pytest.fixture
def reference_server(make_server: ServerFactory) -> RunningServer:
    """A replay-mode server over the reference recordings copied into tests/recordings."""
    return make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=REFERENCE_RECORDINGS,
                       providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])
