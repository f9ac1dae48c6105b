"""Table definitions. Changes to them go through a new named migration in migrations.py."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", Float, nullable=False),
)

responses = Table(
    "responses",
    metadata,
    # An explicit sequence gives listing a total order even when created_at ties.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("model", String(300), nullable=False),
    Column("status", String(40), nullable=False),
    Column("previous_response_id", String(100), nullable=True),
    # JSON documents, stored as text so both backends hold exactly the bytes orjson wrote.
    Column("response", Text, nullable=False),
    Column("input_items", Text, nullable=False),
    Column("messages", Text, nullable=False),
)
