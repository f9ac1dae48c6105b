"""Choosing the vector index for a deployment (the `vector_index` setting)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from riposte.config import Settings
from riposte.vectors.index import VectorIndex
from riposte.vectors.pg_index import PgVectorIndex, pgvector_available
from riposte.vectors.sqlite_index import SqliteVecIndex

logger = logging.getLogger(__name__)
SQLITE_INDEX_FILE = "vector_index.db"


async def open_index(settings: Settings, engine: AsyncEngine) -> VectorIndex:
    """pgvector when asked for, or (auto) when the database is PostgreSQL with the extension;
    otherwise sqlite-vec in the data directory."""
    on_postgres = engine.dialect.name == "postgresql"
    if settings.vector_index == "pgvector" and not on_postgres:
        raise ValueError("vector_index 'pgvector' needs a PostgreSQL database_url")
    if settings.vector_index != "sqlite-vec" and on_postgres:
        if await pgvector_available(engine):
            return PgVectorIndex(engine)
        if settings.vector_index == "pgvector":
            raise ValueError("vector_index is 'pgvector' but the PostgreSQL server has no 'vector' extension")
        logger.warning("PostgreSQL has no pgvector extension; vector stores use sqlite-vec in %s, which only "
                       "processes on this host can share. Set vector_index: pgvector to require pgvector.",
                       settings.data_dir)
    return SqliteVecIndex((settings.data_dir / SQLITE_INDEX_FILE).resolve())
