"""The embedded index: sqlite-vec for vectors and FTS5 for keywords, in one SQLite file.

Driver choice, deliberate: this connection uses `sqlean.py`, not the standard `sqlite3` module.
Many Python builds (this machine's included) compile `sqlite3` without `enable_load_extension`,
so with it whether vector search works would depend on how the user's Python was built.
`sqlean.py` bundles its own SQLite (3.50, with FTS5) that loads extensions, in wheels for Linux,
macOS and Windows on x86-64 and arm64; `pysqlite3-binary`, the alternative, has Linux x86-64
wheels only. The main database keeps using aiosqlite; only this index file needs the extension.

Per store: a vec0 table with the exact float vectors and a 1-bit-per-dimension copy, and a
contentless FTS5 table; chunk text and attributes live once, in `chunks`. Filters become a
`rowid IN (SELECT ...)` constraint, which sqlite-vec applies during the KNN scan and FTS5 during
the match, so filtered searches still return the best `limit` matching chunks.
"""

from __future__ import annotations

import array
import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import orjson
import sqlean  # type: ignore[import-untyped]
import sqlite_vec  # type: ignore[import-untyped]

from riposte.vectors.filter_sql import compile_sqlite
from riposte.vectors.index import (
    Attributes,
    EmbeddedChunk,
    IndexedFile,
    SearchHit,
    SearchMode,
    SearchQuery,
    hit_from_row,
)
from riposte.vectors.ranking import HYBRID_DEPTH, keyword_score, keyword_terms, reciprocal_rank_fusion

T = TypeVar("T")
Connection = Any  # sqlean.Connection, which ships no type information

# Below this many chunks a store is scanned exactly. Above it the scan runs over the 1-bit copies
# (32x less data) and the best candidates are re-scored exactly: a trade of recall for latency.
# Measured here at 100k 384-dim vectors: an exact scan takes ~42 ms; a bit scan ~11 ms for 100
# candidates, and sqlite-vec's cost grows with the candidate count (~70 ms for 400).
EXACT_SCAN_MAX_CHUNKS = 20_000
RESCORE_OVERSAMPLING = 2
MIN_RESCORE_CANDIDATES = 100
# A query term in more than this share of a store's chunks is left out of keyword matching (unless
# every term is): ranking all chunks that hold it costs ~1 ms per thousand of them, and BM25 gives
# it almost no weight. Below _FREQUENCY_CHECK_CHUNKS chunks nothing is expensive enough to check.
COMMON_TERM_SHARE = 0.1
_FREQUENCY_CHECK_CHUNKS = 2000
_READERS = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS index_stores (
    key INTEGER PRIMARY KEY,
    store_id TEXT NOT NULL UNIQUE,
    dimension INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    store_key INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    filename TEXT NOT NULL,
    text TEXT NOT NULL,
    attributes TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    metadata_token_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (store_key, file_id);
"""
_HIT_COLUMNS = "id, file_id, filename, chunk_index, text, token_count, metadata_token_count, attributes"


def connect(path: Path) -> Connection:
    connection = sqlean.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    connection.enable_load_extension(True)
    sqlite_vec.load(connection)
    connection.enable_load_extension(False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "cache_size=-131072",
                   "mmap_size=1073741824", "temp_store=MEMORY"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


class SqliteVecIndex:
    name = "sqlite-vec"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path)
        self._writer.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._frequencies = DocumentFrequencies()
        self._readers: queue.Queue[Connection] = queue.Queue()
        for _ in range(_READERS):
            self._readers.put(connect(path))

    # ------------------------------------------------------------------ plumbing

    async def _write(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self._write_lock:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._writer)
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
                self._writer.execute("COMMIT")
                return result

        return await anyio.to_thread.run_sync(run)

    async def _read(self, work: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self._reader() as connection:
                return work(connection)

        return await anyio.to_thread.run_sync(run)

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        connection = self._readers.get()
        try:
            yield connection
        finally:
            self._readers.put(connection)

    # ------------------------------------------------------------------ stores

    async def ensure_store(self, store_id: str, dimension: int) -> None:
        def work(db: Connection) -> None:
            found = db.execute("SELECT key, dimension FROM index_stores WHERE store_id = ?", (store_id,)).fetchone()
            if found is not None:
                if found[1] != dimension:
                    raise ValueError(f"store {store_id} holds {found[1]}-dimensional vectors, not {dimension}")
                return
            key = db.execute("INSERT INTO index_stores (store_id, dimension) VALUES (?, ?)",
                             (store_id, dimension)).lastrowid
            # Table names come from the integer key, never from a client's string.
            # Vectors are stored unit-length, so L2 distance orders exactly as cosine does, and
            # sqlite-vec's L2 scan is SIMD-accelerated (~25% faster here than its cosine scan).
            db.execute(f"CREATE VIRTUAL TABLE vec_{key} USING vec0(embedding float[{dimension}], "
                       f"coarse bit[{_bit_width(dimension)}], chunk_size=4096)")
            db.execute(f"CREATE VIRTUAL TABLE fts_{key} USING fts5(text, content='', contentless_delete=1, "
                       "tokenize='porter unicode61')")
            db.execute(f"CREATE VIRTUAL TABLE fts_{key}_terms USING fts5vocab(fts_{key}, 'row')")
            # Exact vectors again, in a plain table: re-scoring candidates by rowid from here is a
            # B-tree lookup each, where vec0 point reads cost far more.
            db.execute(f"CREATE TABLE exact_{key} (rowid INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")

        await self._write(work)

    async def drop_store(self, store_id: str) -> None:
        def work(db: Connection) -> None:
            key = _store_key(db, store_id)
            if key is None:
                return
            db.execute(f"DROP TABLE IF EXISTS vec_{key}")
            db.execute(f"DROP TABLE IF EXISTS fts_{key}_terms")
            db.execute(f"DROP TABLE IF EXISTS fts_{key}")
            db.execute(f"DROP TABLE IF EXISTS exact_{key}")
            db.execute("DELETE FROM chunks WHERE store_key = ?", (key,))
            db.execute("DELETE FROM index_stores WHERE key = ?", (key,))

        await self._write(work)

    # ------------------------------------------------------------------ files

    async def replace_file(self, store_id: str, file: IndexedFile, chunks: Sequence[EmbeddedChunk]) -> None:
        attributes = orjson.dumps(file.attributes).decode()

        def work(db: Connection) -> None:
            key = _require_key(db, store_id)
            _delete_file_chunks(db, key, file.file_id)
            for chunk in chunks:
                row_id = db.execute(
                    "INSERT INTO chunks (store_key, file_id, chunk_index, filename, text, attributes, token_count, "
                    "metadata_token_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, file.file_id, chunk.index, file.filename, chunk.text, attributes, chunk.token_count,
                     file.metadata_token_count),
                ).lastrowid
                vector = _unit_float32(chunk.embedding)
                db.execute(f"INSERT INTO vec_{key} (rowid, embedding, coarse) VALUES (?, ?, vec_quantize_binary(?))",
                           (row_id, vector, _padded(vector, chunk.embedding)))
                db.execute(f"INSERT INTO fts_{key} (rowid, text) VALUES (?, ?)", (row_id, chunk.text))
                db.execute(f"INSERT INTO exact_{key} (rowid, embedding) VALUES (?, ?)", (row_id, vector))
            db.execute("UPDATE index_stores SET chunk_count = chunk_count + ? WHERE key = ?", (len(chunks), key))

        await self._write(work)

    async def delete_file(self, store_id: str, file_id: str) -> None:
        def work(db: Connection) -> None:
            key = _store_key(db, store_id)
            if key is not None:
                _delete_file_chunks(db, key, file_id)

        await self._write(work)

    async def update_attributes(self, store_id: str, file_id: str, attributes: Attributes) -> None:
        encoded = orjson.dumps(attributes).decode()

        def work(db: Connection) -> None:
            key = _store_key(db, store_id)
            if key is not None:
                db.execute("UPDATE chunks SET attributes = ? WHERE store_key = ? AND file_id = ?",
                           (encoded, key, file_id))

        await self._write(work)

    # ------------------------------------------------------------------ search

    async def search(self, store_id: str, query: SearchQuery) -> list[SearchHit]:
        return await self._read(lambda db: _search(db, store_id, query, self._frequencies))

    async def aclose(self) -> None:
        def close_all() -> None:
            with self._write_lock:
                self._writer.close()
            for _ in range(_READERS):
                self._readers.get().close()

        await anyio.to_thread.run_sync(close_all)


class DocumentFrequencies:
    """How many chunks of a store hold a term, cached: fts5vocab counts a common term by walking its
    whole posting list. A count is reused while the store's size stays within 10% of what it was;
    it only steers which terms are worth matching, so a slightly stale count does no harm."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}

    def get(self, db: Connection, store_id: str, key: int, term: str, chunk_count: int) -> int:
        cached = self._counts.get((store_id, term))
        if cached is not None and abs(cached[1] - chunk_count) <= chunk_count // 10:
            return cached[0]
        # Terms in the vocabulary are stemmed; an unstemmed word that differs is simply not found
        # and counts as rare, so it is kept.
        found = db.execute(f"SELECT doc FROM fts_{key}_terms WHERE term = ?", (term,)).fetchone()
        count = int(found[0]) if found is not None else 0
        self._counts[(store_id, term)] = (count, chunk_count)
        return count


def _search(db: Connection, store_id: str, query: SearchQuery, frequencies: DocumentFrequencies) -> list[SearchHit]:
    found = db.execute("SELECT key, chunk_count FROM index_stores WHERE store_id = ?", (store_id,)).fetchone()
    if found is None:
        return []
    key, chunk_count = found
    restriction, params = _restriction(key, query)
    terms = _matchable_terms(db, store_id, key, chunk_count, query.text, frequencies)
    if query.mode is SearchMode.KEYWORD:
        ranked = _keyword_ranking(db, key, terms, query.limit, restriction, params)
    elif query.mode is SearchMode.VECTOR:
        ranked = _vector_ranking(db, key, chunk_count, query, query.limit, restriction, params)
    else:
        depth = query.limit * HYBRID_DEPTH
        vector = _vector_ranking(db, key, chunk_count, query, depth, restriction, params)
        keyword = _keyword_ranking(db, key, terms, depth, restriction, params)
        ranked = reciprocal_rank_fusion([i for i, _ in vector], [i for i, _ in keyword], query.weights)
    kept = [(row_id, score) for row_id, score in ranked if score >= query.score_threshold][: query.limit]
    return _hits(db, kept)


def _restriction(key: int, query: SearchQuery) -> tuple[str, dict[str, Any]]:
    if query.filters is None:
        return "", {}
    condition, params = compile_sqlite(query.filters)
    return (f" AND rowid IN (SELECT id FROM chunks WHERE store_key = {key} AND {condition})", params)


def _vector_ranking(db: Connection, key: int, chunk_count: int, query: SearchQuery, depth: int,
                    restriction: str, params: dict[str, Any]) -> list[tuple[int, float]]:
    if query.embedding is None:
        raise ValueError("vector search needs a query embedding")
    vector = _unit_float32(query.embedding)
    if chunk_count <= EXACT_SCAN_MAX_CHUNKS:
        rows = db.execute(f"SELECT rowid, distance FROM vec_{key} WHERE embedding MATCH :q AND k = :k{restriction}",
                          {**params, "q": vector, "k": depth}).fetchall()
        # For unit vectors, cosine similarity = 1 - (L2 distance)^2 / 2.
        return [(row_id, 1.0 - distance * distance / 2) for row_id, distance in rows]
    wanted = max(MIN_RESCORE_CANDIDATES, depth * RESCORE_OVERSAMPLING)
    candidates = db.execute(
        f"SELECT rowid FROM vec_{key} WHERE coarse MATCH vec_quantize_binary(:q) AND k = :k{restriction}",
        {**params, "q": _padded(vector, query.embedding), "k": wanted},
    ).fetchall()
    if not candidates:
        return []
    listed = ",".join(str(int(row[0])) for row in candidates)
    rescored = db.execute(f"SELECT rowid, vec_distance_cosine(embedding, ?) AS d FROM exact_{key} "
                          f"WHERE rowid IN ({listed}) ORDER BY d LIMIT ?", (vector, depth)).fetchall()
    return [(row_id, 1.0 - distance) for row_id, distance in rescored]


def _matchable_terms(db: Connection, store_id: str, key: int, chunk_count: int, text: str,
                     frequencies: DocumentFrequencies) -> list[str]:
    terms = keyword_terms(text)
    if chunk_count < _FREQUENCY_CHECK_CHUNKS or not terms:
        return terms
    counts = {term: frequencies.get(db, store_id, key, term, chunk_count) for term in terms}
    kept = [term for term in terms if counts[term] <= COMMON_TERM_SHARE * chunk_count]
    return kept or [min(terms, key=counts.__getitem__)]


def _keyword_ranking(db: Connection, key: int, terms: list[str], depth: int, restriction: str,
                     params: dict[str, Any]) -> list[tuple[int, float]]:
    if not terms:
        return []
    match = " OR ".join(f'"{term}"' for term in terms)
    rows = db.execute(f"SELECT rowid, bm25(fts_{key}) FROM fts_{key} WHERE fts_{key} MATCH :match{restriction} "
                      "ORDER BY rank LIMIT :k", {**params, "match": match, "k": depth}).fetchall()
    # FTS5's bm25() is negated: more negative is more relevant.
    return [(row_id, keyword_score(-bm25)) for row_id, bm25 in rows]


def _hits(db: Connection, ranked: list[tuple[int, float]]) -> list[SearchHit]:
    if not ranked:
        return []
    listed = ",".join(str(int(row_id)) for row_id, _ in ranked)
    rows = {row[0]: row for row in db.execute(f"SELECT {_HIT_COLUMNS} FROM chunks WHERE id IN ({listed})")}
    return [hit_from_row(rows[row_id][1:7], score, orjson.loads(rows[row_id][7]))
            for row_id, score in ranked if row_id in rows]


def _delete_file_chunks(db: Connection, key: int, file_id: str) -> None:
    ids = [row[0] for row in db.execute("SELECT id FROM chunks WHERE store_key = ? AND file_id = ?", (key, file_id))]
    if not ids:
        return
    listed = ",".join(str(int(i)) for i in ids)
    db.execute(f"DELETE FROM vec_{key} WHERE rowid IN ({listed})")
    db.execute(f"DELETE FROM fts_{key} WHERE rowid IN ({listed})")
    db.execute(f"DELETE FROM exact_{key} WHERE rowid IN ({listed})")
    db.execute(f"DELETE FROM chunks WHERE id IN ({listed})")
    db.execute("UPDATE index_stores SET chunk_count = chunk_count - ? WHERE key = ?", (len(ids), key))


def _store_key(db: Connection, store_id: str) -> int | None:
    found = db.execute("SELECT key FROM index_stores WHERE store_id = ?", (store_id,)).fetchone()
    return int(found[0]) if found is not None else None


def _require_key(db: Connection, store_id: str) -> int:
    key = _store_key(db, store_id)
    if key is None:
        raise ValueError(f"store {store_id} has no index space; call ensure_store first")
    return key


def _unit_float32(values: Sequence[float]) -> bytes:
    norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
    return array.array("f", (v / norm for v in values)).tobytes()


def _bit_width(dimension: int) -> int:
    # vec0 bit columns need a multiple of 8 dimensions.
    return (dimension + 7) // 8 * 8


def _padded(vector: bytes, values: Sequence[float]) -> bytes:
    missing = _bit_width(len(values)) - len(values)
    return vector + bytes(4 * missing) if missing else vector
