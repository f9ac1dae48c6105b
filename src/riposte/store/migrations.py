"""Migrations as named, ordered functions, each recorded in `schema_migrations` once applied."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, select

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


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_create_responses", _create_responses),
    ("0002_create_conversations", _create_conversations),
    ("0003_create_unstored_responses", _create_unstored_responses),
    ("0004_create_files_and_vector_stores", _create_files_and_vector_stores),
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
