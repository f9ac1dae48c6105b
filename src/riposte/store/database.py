"""The database engine: SQLite in WAL mode by default, or PostgreSQL via asyncpg."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from riposte.store.migrations import apply_migrations


def async_url(url: str) -> str:
    """The URL with Riposte's async driver: `postgresql://` and `sqlite://`, as users write them,
    become `postgresql+asyncpg://` and `sqlite+aiosqlite://`."""
    parsed = make_url(url)
    drivers = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """A database URL fit for a log line: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.render_as_string(hide_password=False), parsed.database)
    return create_async_engine(parsed, pool_size=20, max_overflow=20, pool_pre_ping=True)


async def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database the URL names when it does not exist yet (a first run with
    `database_url: postgresql://host/riposte`). True when it was created."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return False
    import asyncpg  # type: ignore[import-untyped]

    target = parsed.database
    connect = dict(host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password)
    try:
        connection = await asyncpg.connect(database=target, **connect)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await connection.close()
        return False
    admin = await asyncpg.connect(database="postgres", **connect)
    try:
        quoted = '"' + target.replace('"', '""') + '"'
        await admin.execute(f"CREATE DATABASE {quoted}")
    except asyncpg.DuplicateDatabaseError:
        return False  # another worker created it first
    finally:
        await admin.close()
    return True


def _sqlite_engine(url: str, database: str | None) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection per process: SQLite lets one writer in at a time anyway, and a queue in the pool
    # hands the turn over at once, where a second connection would sleep in SQLite's busy handler
    # (up to 100 ms a try) until the first one's transaction ends.
    # No rollback when a connection goes back to the pool: the driver's legacy transaction mode opens
    # transactions only for writes, which `begin()` always ends, so the reset would be a wasted
    # round trip to the SQLite thread on every query.
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60,
                                 pool_reset_on_return=None)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer, and several server processes share the file.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


async def migrate(engine: AsyncEngine, attempts: int = 5) -> list[str]:
    """Apply pending migrations. Worker processes start together and race to migrate; the loser's
    transaction fails on a table or row the winner just created, and its retry finds them done."""
    for attempt in range(attempts):
        try:
            async with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    await connection.execute(text("SELECT pg_advisory_xact_lock(83210001)"))
                return await connection.run_sync(apply_migrations)
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    return []
