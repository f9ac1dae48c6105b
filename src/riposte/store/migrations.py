"""Migrations as named, ordered functions, each recorded in `schema_migrations` once applied."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from sqlalchemy import Column, Connection, Table, inspect, select, text
from sqlalchemy.schema import CreateColumn

from riposte.store import schema

Migration = Callable[[Connection], None]


def _create_responses(connection: Connection) -> None:
    schema.responses.create(connection, checkfirst=True)


def _create_conversations(connection: Connection) -> None:
    schema.conversations.create(connection, checkfirst=True)
    schema.conversation_items.create(connection, checkfirst=True)


def _create_unstored_responses(connection: Connection) -> None:
    schema.unstored_responses.create(connection, checkfirst=True)


def _create_files_and_vector_stores(connection: Connection) -> None:
    for table in (schema.files, schema.vector_stores, schema.vector_store_files, schema.vector_store_file_batches):
        table.create(connection, checkfirst=True)


def _durable_turns_and_ingestion(connection: Connection) -> None:
    """Chain storage (history_base, tombstones), in-flight owners, and the live instances table."""
    for table, names in ((schema.responses, ("history_base", "deleted", "owner")),
                         (schema.vector_store_files, ("owner", "attempts"))):
        for name in names:
            _add_column(connection, table, table.c[name])
    for index in schema.responses.indexes:
        index.create(connection, checkfirst=True)
    schema.server_instances.create(connection, checkfirst=True)


def _add_column(connection: Connection, table: Table, column: Column[object]) -> None:
    """ALTER TABLE ADD COLUMN, unless the table was created (by 0001-0004) with it already."""
    if column.name in {existing["name"] for existing in inspect(connection).get_columns(table.name)}:
        return
    definition = CreateColumn(column).compile(dialect=connection.dialect)
    connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {definition}")


def _create_api_keys(connection: Connection) -> None:
    schema.api_keys.create(connection, checkfirst=True)


def _add_project_ownership(connection: Connection) -> None:
    """A `project` column on every owned table; rows from before authentication belong to 'default'."""
    for name in schema.OWNED_TABLE_NAMES:
        table = schema.metadata.tables[name]
        _add_column(connection, table, table.c.project)
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{name}_project ON {name} (project)"))


def _index_items_by_id(connection: Connection) -> None:
    """The item index behind `item_reference`, filled from the responses already stored: each row's
    own input items and its output (the first row to hold an id keeps it, as on writes)."""
    schema.response_items.create(connection, checkfirst=True)
    for index in schema.conversation_items.indexes:
        index.create(connection, checkfirst=True)
    responses = schema.responses
    seen: set[str] = set()
    rows = connection.execute(select(responses.c.id, responses.c.input_items, responses.c.response)
                              .order_by(responses.c.seq)).all()
    for response_id, input_items, response in rows:
        fresh: list[dict[str, str]] = []
        for item in [*orjson.loads(input_items), *(orjson.loads(response).get("output") or [])]:
            item_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(item_id, str) and item_id not in seen:
                seen.add(item_id)
                fresh.append({"item_id": item_id, "response_id": response_id, "item": orjson.dumps(item).decode()})
        if fresh:
            connection.execute(schema.response_items.insert(), fresh)


def _create_response_traces(connection: Connection) -> None:
    schema.response_traces.create(connection, checkfirst=True)


def _background_and_event_log(connection: Connection) -> None:
    schema.response_events.create(connection, checkfirst=True)
    schema.background_jobs.create(connection, checkfirst=True)


def _event_batches(connection: Connection) -> None:
    """Stored events become one row per flush. The rows of 0010 (one per event) are only for
    resuming streams, so they are dropped rather than converted."""
    connection.execute(text("DROP TABLE IF EXISTS response_events"))
    schema.response_events.create(connection)


def _background_limit_key(connection: Connection) -> None:
    """Background jobs record whose limits they count against; older jobs count against none."""
    jobs = schema.background_jobs
    _add_column(connection, jobs, jobs.c.limit_key)
    for index in jobs.indexes:
        index.create(connection, checkfirst=True)


def _project_indexes_lead_to_ids(connection: Connection) -> None:
    """Each owned table's index on `project` alone becomes one on (project, id). Every row of a
    single-team server is in the project 'default', and on a table without statistics yet (a new
    database's first minute, before autovacuum's first ANALYZE) PostgreSQL answered `id = ? AND
    project = ?` through the project index, reading every row of the project; a prepared statement
    kept that plan, so each stored response cost a scan of all the others (bench/RESULTS.md, "Issue
    16, twenty-fourth pass"). With the id in the same index the lookup is one probe whatever the
    statistics say, and the index still serves a filter on the project alone."""
    for name in schema.OWNED_TABLE_NAMES:
        connection.execute(text(f"CREATE INDEX IF NOT EXISTS ix_{name}_project_id ON {name} (project, id)"))
        connection.execute(text(f"DROP INDEX IF EXISTS ix_{name}_project"))


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_create_responses", _create_responses),
    ("0002_create_conversations", _create_conversations),
    ("0003_create_unstored_responses", _create_unstored_responses),
    ("0004_create_files_and_vector_stores", _create_files_and_vector_stores),
    ("0005_durable_turns_and_ingestion", _durable_turns_and_ingestion),
    ("0006_create_api_keys", _create_api_keys),
    ("0007_add_project_ownership", _add_project_ownership),
    ("0008_index_items_by_id", _index_items_by_id),
    ("0009_response_traces", _create_response_traces),
    ("0010_background_and_event_log", _background_and_event_log),
    ("0011_event_batches", _event_batches),
    ("0012_background_limit_key", _background_limit_key),
    ("0013_project_indexes_lead_to_ids", _project_indexes_lead_to_ids),
]


def apply_migrations(connection: Connection) -> list[str]:
    """Apply what is missing, in order; return the names applied now."""
    schema.schema_migrations.create(connection, checkfirst=True)
    done = set(connection.execute(select(schema.schema_migrations.c.name)).scalars())
    applied: list[str] = []
    for name, migrate in MIGRATIONS:
        if name in done:
            continue
        migrate(connection)
        connection.execute(schema.schema_migrations.insert().values(name=name, applied_at=time.time()))
        applied.append(name)
    return applied
