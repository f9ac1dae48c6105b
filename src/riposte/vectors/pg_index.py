"""The PostgreSQL index: pgvector for vectors and built-in full-text search for keywords.

One table per store, with the vector column typed to the store's dimension so that an HNSW index
can serve it. Filters are part of the same SELECT; with `hnsw.iterative_scan` the index scan keeps
going until enough rows pass them, instead of returning fewer results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from riposte.vectors.filter_sql import compile_postgres
from riposte.vectors.index import (
    Attributes,
    EmbeddedChunk,
    IndexedFile,
    IndexUnavailableError,
    SearchHit,
    SearchMode,
    SearchQuery,
    hit_from_row,
)
from riposte.vectors.ranking import HYBRID_DEPTH, keyword_score, keyword_terms, reciprocal_rank_fusion

# pgvector's HNSW index takes vectors of at most 2000 dimensions; larger ones are scanned exactly.
HNSW_MAX_DIMENSION = 2000
# The widest beam pgvector allows. Measured at 100k 384-dim chunks (bench/VECTOR_RESULTS.md):
# recall@10 0.34 at 100, 0.69 at 400 and 0.88 at 1000, for 5-8 ms more per search.
HNSW_EF_SEARCH = 1000
_HIT_COLUMNS = "id, file_id, filename, chunk_index, text, token_count, metadata_token_count, attributes"


async def pgvector_available(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        found = await connection.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
        return found.first() is not None


class PgVectorIndex:
    name = "pgvector"

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._ready = False
        self._setup_lock = asyncio.Lock()

    async def _setup(self) -> None:
        if self._ready:
            return
        async with self._setup_lock:
            if self._ready:
                return
            if not await pgvector_available(self._engine):
                raise IndexUnavailableError("the PostgreSQL server has no pgvector extension ('vector')")
            async with self._engine.begin() as db:
                await db.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                await db.execute(text("CREATE TABLE IF NOT EXISTS riposte_index_stores ("
                                      "key BIGSERIAL PRIMARY KEY, store_id TEXT NOT NULL UNIQUE, "
                                      "dimension INTEGER NOT NULL)"))
            self._ready = True

    async def ensure_store(self, store_id: str, dimension: int) -> None:
        await self._setup()
        async with self._engine.begin() as db:
            # Serializes concurrent first ingestions into one store.
            await db.execute(text("LOCK TABLE riposte_index_stores IN SHARE ROW EXCLUSIVE MODE"))
            found = (await db.execute(text("SELECT key, dimension FROM riposte_index_stores WHERE store_id = :s"),
                                      {"s": store_id})).first()
            if found is not None:
                if found[1] != dimension:
                    raise ValueError(f"store {store_id} holds {found[1]}-dimensional vectors, not {dimension}")
                return
            inserted = await db.execute(text("INSERT INTO riposte_index_stores (store_id, dimension) "
                                             "VALUES (:s, :d) RETURNING key"), {"s": store_id, "d": dimension})
            key = inserted.scalar_one()
            await _create_store_table(db, int(key), dimension)

    async def drop_store(self, store_id: str) -> None:
        await self._setup()
        async with self._engine.begin() as db:
            key = await _store_key(db, store_id)
            if key is None:
                return
            await db.execute(text(f"DROP TABLE IF EXISTS riposte_chunks_{key}"))
            await db.execute(text("DELETE FROM riposte_index_stores WHERE key = :k"), {"k": key})

    async def replace_file(self, store_id: str, file: IndexedFile, chunks: Sequence[EmbeddedChunk]) -> None:
        await self._setup()
        rows = [{"f": file.file_id, "i": chunk.index, "n": file.filename, "t": chunk.text,
                 "a": orjson.dumps(file.attributes).decode(), "tc": chunk.token_count,
                 "mtc": file.metadata_token_count, "e": _vector_literal(chunk.embedding)} for chunk in chunks]
        async with self._engine.begin() as db:
            key = await _require_key(db, store_id)
            await db.execute(text(f"DELETE FROM riposte_chunks_{key} WHERE file_id = :f"), {"f": file.file_id})
            if rows:
                await db.execute(text(
                    f"INSERT INTO riposte_chunks_{key} (file_id, chunk_index, filename, text, attributes, token_count, "
                    "metadata_token_count, embedding) VALUES (:f, :i, :n, :t, CAST(:a AS jsonb), :tc, :mtc, "
                    "CAST(:e AS vector))"), rows)

    async def delete_file(self, store_id: str, file_id: str) -> None:
        await self._setup()
        async with self._engine.begin() as db:
            key = await _store_key(db, store_id)
            if key is not None:
                await db.execute(text(f"DELETE FROM riposte_chunks_{key} WHERE file_id = :f"), {"f": file_id})

    async def chunk_counts(self, store_id: str) -> dict[str, int]:
        rows = await self._read_chunks(store_id, "SELECT file_id, count(*) FROM {chunks} GROUP BY file_id", {})
        return {str(row[0]): int(row[1]) for row in rows}

    async def file_chunks(self, store_id: str, file_id: str) -> list[SearchHit]:
        rows = await self._read_chunks(
            store_id, f"SELECT {_HIT_COLUMNS} FROM {{chunks}} WHERE file_id = :f ORDER BY chunk_index", {"f": file_id})
        return [hit_from_row(row[1:7], 0.0, _attributes(row[7])) for row in rows]

    async def _read_chunks(self, store_id: str, query: str, params: dict[str, Any]) -> Sequence[Any]:
        """Rows of a query on the store's chunk table (`{chunks}` in `query`); none for an unknown store."""
        await self._setup()
        async with self._engine.connect() as db:
            key = await _store_key(db, store_id)
            if key is None:
                return []
            return (await db.execute(text(query.format(chunks=f"riposte_chunks_{key}")), params)).all()

    async def update_attributes(self, store_id: str, file_id: str, attributes: Attributes) -> None:
        await self._setup()
        async with self._engine.begin() as db:
            key = await _store_key(db, store_id)
            if key is not None:
                await db.execute(text(f"UPDATE riposte_chunks_{key} SET attributes = CAST(:a AS jsonb) "
                                      "WHERE file_id = :f"), {"a": orjson.dumps(attributes).decode(), "f": file_id})

    async def search(self, store_id: str, query: SearchQuery) -> list[SearchHit]:
        await self._setup()
        async with self._engine.begin() as db:
            key = await _store_key(db, store_id)
            if key is None:
                return []
            condition, params = compile_postgres(query.filters) if query.filters is not None else ("TRUE", {})
            ranked = await _ranking(db, key, query, condition, params)
            kept = [(row_id, score) for row_id, score in ranked if score >= query.score_threshold][: query.limit]
            return await _hits(db, key, kept)

    async def aclose(self) -> None:
        """The engine belongs to the caller."""


async def _create_store_table(db: AsyncConnection, key: int, dimension: int) -> None:
    # Table names come from the integer key, never from a client's string.
    await db.execute(text(
        f"CREATE TABLE riposte_chunks_{key} (id BIGSERIAL PRIMARY KEY, file_id TEXT NOT NULL, "
        "chunk_index INTEGER NOT NULL, filename TEXT NOT NULL, text TEXT NOT NULL, attributes JSONB NOT NULL, "
        f"token_count INTEGER NOT NULL, metadata_token_count INTEGER NOT NULL, embedding vector({dimension}) NOT NULL, "
        "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)"))
    await db.execute(text(f"CREATE INDEX riposte_chunks_{key}_file ON riposte_chunks_{key} (file_id)"))
    await db.execute(text(f"CREATE INDEX riposte_chunks_{key}_tsv ON riposte_chunks_{key} USING gin (tsv)"))
    if dimension <= HNSW_MAX_DIMENSION:
        await db.execute(text(f"CREATE INDEX riposte_chunks_{key}_hnsw ON riposte_chunks_{key} "
                              "USING hnsw (embedding vector_cosine_ops)"))


async def _ranking(db: AsyncConnection, key: int, query: SearchQuery, condition: str,
                   params: dict[str, Any]) -> list[tuple[int, float]]:
    if query.mode is SearchMode.KEYWORD:
        return await _keyword_ranking(db, key, query.text, query.limit, condition, params)
    if query.mode is SearchMode.VECTOR:
        return await _vector_ranking(db, key, query, query.limit, condition, params)
    depth = query.limit * HYBRID_DEPTH
    vector = await _vector_ranking(db, key, query, depth, condition, params)
    keyword = await _keyword_ranking(db, key, query.text, depth, condition, params)
    return reciprocal_rank_fusion([i for i, _ in vector], [i for i, _ in keyword], query.weights)


async def _vector_ranking(db: AsyncConnection, key: int, query: SearchQuery, depth: int, condition: str,
                          params: dict[str, Any]) -> list[tuple[int, float]]:
    if query.embedding is None:
        raise ValueError("vector search needs a query embedding")
    await db.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
    await db.execute(text(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}"))
    rows = await db.execute(text(
        f"SELECT id, embedding <=> CAST(:q AS vector) AS distance FROM riposte_chunks_{key} WHERE {condition} "
        "ORDER BY distance LIMIT :k"), {**params, "q": _vector_literal(query.embedding), "k": depth})
    return [(int(row_id), 1.0 - float(distance)) for row_id, distance in rows]


async def _keyword_ranking(db: AsyncConnection, key: int, text_query: str, depth: int, condition: str,
                           params: dict[str, Any]) -> list[tuple[int, float]]:
    words = keyword_terms(text_query)
    if not words:
        return []
    # ts_rank, not ts_rank_cd: both read every matching row's tsvector, but cover density also
    # walks term positions, which made keyword ranking 2.3x slower at 100k chunks (43 -> 18 ms).
    rows = await db.execute(text(
        f"SELECT id, ts_rank(tsv, query) AS relevance FROM riposte_chunks_{key}, "
        f"to_tsquery('english', :words) AS query WHERE tsv @@ query AND {condition} "
        "ORDER BY relevance DESC, id LIMIT :k"), {**params, "words": " | ".join(words), "k": depth})
    return [(int(row_id), keyword_score(float(relevance))) for row_id, relevance in rows]


async def _hits(db: AsyncConnection, key: int, ranked: list[tuple[int, float]]) -> list[SearchHit]:
    if not ranked:
        return []
    rows = await db.execute(text(f"SELECT {_HIT_COLUMNS} FROM riposte_chunks_{key} WHERE id = ANY(:ids)"),
                            {"ids": [row_id for row_id, _ in ranked]})
    by_id = {int(row[0]): row for row in rows}
    return [hit_from_row(by_id[row_id][1:7], score, _attributes(by_id[row_id][7]))
            for row_id, score in ranked if row_id in by_id]


def _attributes(value: Any) -> Attributes:
    # asyncpg hands JSONB back as text unless a codec is registered.
    loaded: Attributes = orjson.loads(value) if isinstance(value, str | bytes) else value
    return loaded


async def _store_key(db: AsyncConnection, store_id: str) -> int | None:
    found = (await db.execute(text("SELECT key FROM riposte_index_stores WHERE store_id = :s"),
                              {"s": store_id})).scalar()
    return int(found) if found is not None else None


async def _require_key(db: AsyncConnection, store_id: str) -> int:
    key = await _store_key(db, store_id)
    if key is None:
        raise ValueError(f"store {store_id} has no index space; call ensure_store first")
    return key


def _vector_literal(values: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(v)) for v in values) + "]"
