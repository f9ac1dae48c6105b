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

Vector search is exact at every size that fits the memory budget. Small stores are scanned by
sqlite-vec. Larger ones are scanned from an in-memory matrix (`StoreMatrices`): one BLAS
matrix-vector product is ~3x faster here than sqlite-vec's scan (13 ms against 42 ms for 100k
384-dim vectors), and sqlite-vec's KNN costs O(rows x k), so its 1-bit pre-selection cannot
afford the thousands of candidates good recall needs (recall@10 0.30 with 100, 0.69 with 1,000
on the bench corpus). The same compiled filter selects the rows the matrix scan may rank, so
filters still restrict the ranking rather than trim its result. Only a store whose matrix would
not fit the budget falls back to the 1-bit scan with exact re-scoring.
"""

from __future__ import annotations

import array
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import numpy as np
import orjson
import sqlean  # type: ignore[import-untyped]
import sqlite_vec  # type: ignore[import-untyped]

from riposte.vectors.filter_sql import compile_sqlite
from riposte.vectors.filters import Filter
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

# Up to this many chunks sqlite-vec scans a store (5 ms at 10k), with nothing held in memory.
# Above it the store's vectors are scanned from memory, within MATRIX_MEMORY_BUDGET bytes for all
# stores together (least recently searched evicted first): 100k 384-dim vectors take 154 MB.
EXACT_SCAN_MAX_CHUNKS = 20_000
MATRIX_MEMORY_BUDGET = 1 << 30
# A store too large for the budget scans its 1-bit copies and re-scores the best candidates
# exactly: a trade of recall for latency, as sqlite-vec's KNN cost grows with the candidate count.
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
-- A fresh random token on every change to a store's vectors: in-memory copies compare theirs
-- with it, so they stay exact across connections and processes. No row means never changed.
CREATE TABLE IF NOT EXISTS vector_generations (
    store_key INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""
_HIT_COLUMNS = "id, file_id, filename, chunk_index, text, token_count, metadata_token_count, attributes"


def connect(path: Path) -> Connection:
    connection = sqlean.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    connection.enable_load_extension(True)
    sqlite_vec.load(connection)
    connection.enable_load_extension(False)
    for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=NORMAL", "cache_size=-131072",
                   "mmap_size=1073741824", "temp_store=MEMORY"):
        retry_while_locked(partial(connection.execute, f"PRAGMA {pragma}"))
    return connection


def retry_while_locked(work: Callable[[], object], attempts: int = 100) -> None:
    """Worker processes open the index together at start-up. Switching to WAL and creating the
    schema take locks that SQLite's busy handler does not always wait for, so retry here."""
    for attempt in range(attempts):
        try:
            work()
            return
        except sqlean.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class SqliteVecIndex:
    name = "sqlite-vec"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path)
        retry_while_locked(lambda: self._writer.executescript(_SCHEMA))
        self._write_lock = threading.Lock()
        self._frequencies = DocumentFrequencies()
        self._matrices = StoreMatrices(MATRIX_MEMORY_BUDGET)
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
            self._matrices.forget(key)
            db.execute(f"DROP TABLE IF EXISTS vec_{key}")
            db.execute(f"DROP TABLE IF EXISTS fts_{key}_terms")
            db.execute(f"DROP TABLE IF EXISTS fts_{key}")
            db.execute(f"DROP TABLE IF EXISTS exact_{key}")
            db.execute("DELETE FROM chunks WHERE store_key = ?", (key,))
            db.execute("DELETE FROM index_stores WHERE key = ?", (key,))
            # A later store may reuse the key, so the next one starts from a different token too.
            _vectors_changed(db, key)

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
            _vectors_changed(db, key)

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
        return await self._read(lambda db: _search(db, store_id, query, self._frequencies, self._matrices))

    async def chunk_counts(self, store_id: str) -> dict[str, int]:
        def work(db: Connection) -> dict[str, int]:
            rows = db.execute("SELECT c.file_id, count(*) FROM chunks c JOIN index_stores s ON s.key = c.store_key "
                              "WHERE s.store_id = ? GROUP BY c.file_id", (store_id,)).fetchall()
            return {str(row[0]): int(row[1]) for row in rows}

        return await self._read(work)

    async def file_chunks(self, store_id: str, file_id: str) -> list[SearchHit]:
        def work(db: Connection) -> list[SearchHit]:
            rows = db.execute(f"SELECT {_HIT_COLUMNS} FROM chunks WHERE file_id = ? AND store_key = "
                              "(SELECT key FROM index_stores WHERE store_id = ?) ORDER BY chunk_index",
                              (file_id, store_id)).fetchall()
            return [hit_from_row(row[1:7], 0.0, orjson.loads(row[7])) for row in rows]

        return await self._read(work)

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


@dataclass(frozen=True)
class StoreMatrix:
    """A store's exact unit vectors, one row per chunk, ordered by rowid."""

    generation: int
    row_ids: np.ndarray[Any, np.dtype[np.int64]]
    vectors: np.ndarray[Any, np.dtype[np.float32]]

    @property
    def nbytes(self) -> int:
        return int(self.row_ids.nbytes + self.vectors.nbytes)


class StoreMatrices:
    """Large stores' vectors held in memory for exact scans, reloaded when their generation
    changes and evicted least recently searched first beyond a byte budget."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._matrices: OrderedDict[int, StoreMatrix] = OrderedDict()

    def get(self, db: Connection, store: StoreInfo) -> StoreMatrix | None:
        """None when the store's matrix alone would exceed the budget."""
        if store.chunk_count * (4 * store.dimension + 8) > self._budget:
            return None
        with self._lock:
            found = self._matrices.get(store.key)
            if found is not None and found.generation == store.generation:
                self._matrices.move_to_end(store.key)
                return found
        # Loaded outside the lock: two readers may both load a changed store, which is only work.
        loaded = _load_matrix(db, store)
        with self._lock:
            self._matrices[store.key] = loaded
            self._matrices.move_to_end(store.key)
            while len(self._matrices) > 1 and sum(m.nbytes for m in self._matrices.values()) > self._budget:
                self._matrices.popitem(last=False)
        return loaded

    def forget(self, key: int) -> None:
        with self._lock:
            self._matrices.pop(key, None)


@dataclass(frozen=True)
class StoreInfo:
    key: int
    chunk_count: int
    dimension: int
    generation: int


def _load_matrix(db: Connection, store: StoreInfo) -> StoreMatrix:
    # The generation was read before the rows: if a write lands in between, the matrix is newer
    # than its label and is merely reloaded on the next search, never served stale.
    rows = db.execute(f"SELECT rowid, embedding FROM exact_{store.key} ORDER BY rowid").fetchall()
    row_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), store.dimension)
    return StoreMatrix(store.generation, row_ids, vectors)


def _store_info(db: Connection, store_id: str) -> StoreInfo | None:
    found = db.execute("SELECT s.key, s.chunk_count, s.dimension, coalesce(g.generation, 0) FROM index_stores s "
                       "LEFT JOIN vector_generations g ON g.store_key = s.key WHERE s.store_id = ?",
                       (store_id,)).fetchone()
    return StoreInfo(*(int(value) for value in found)) if found is not None else None


def _search(db: Connection, store_id: str, query: SearchQuery, frequencies: DocumentFrequencies,
            matrices: StoreMatrices) -> list[SearchHit]:
    store = _store_info(db, store_id)
    if store is None:
        return []
    key = store.key
    restriction, params = _restriction(key, query)
    terms = _matchable_terms(db, store_id, key, store.chunk_count, query.text, frequencies)
    if query.mode is SearchMode.KEYWORD:
        ranked = _keyword_ranking(db, key, terms, query.limit, restriction, params)
    elif query.mode is SearchMode.VECTOR:
        ranked = _vector_ranking(db, store, matrices, query, query.limit, restriction, params)
    else:
        depth = query.limit * HYBRID_DEPTH
        vector = _vector_ranking(db, store, matrices, query, depth, restriction, params)
        keyword = _keyword_ranking(db, key, terms, depth, restriction, params)
        ranked = reciprocal_rank_fusion([i for i, _ in vector], [i for i, _ in keyword], query.weights)
    kept = [(row_id, score) for row_id, score in ranked if score >= query.score_threshold][: query.limit]
    return _hits(db, kept)


def _restriction(key: int, query: SearchQuery) -> tuple[str, dict[str, Any]]:
    if query.filters is None:
        return "", {}
    condition, params = compile_sqlite(query.filters)
    return (f" AND rowid IN ({_matching_ids(key, condition)})", params)


def _matching_ids(key: int, condition: str) -> str:
    return f"SELECT id FROM chunks WHERE store_key = {key} AND {condition}"


def _vector_ranking(db: Connection, store: StoreInfo, matrices: StoreMatrices, query: SearchQuery, depth: int,
                    restriction: str, params: dict[str, Any]) -> list[tuple[int, float]]:
    if query.embedding is None:
        raise ValueError("vector search needs a query embedding")
    vector = _unit_float32(query.embedding)
    key = store.key
    if store.chunk_count <= EXACT_SCAN_MAX_CHUNKS:
        rows = db.execute(f"SELECT rowid, distance FROM vec_{key} WHERE embedding MATCH :q AND k = :k{restriction}",
                          {**params, "q": vector, "k": depth}).fetchall()
        # For unit vectors, cosine similarity = 1 - (L2 distance)^2 / 2.
        return [(row_id, 1.0 - distance * distance / 2) for row_id, distance in rows]
    matrix = matrices.get(db, store)
    if matrix is not None:
        allowed = _allowed_positions(db, key, matrix, query.filters) if query.filters is not None else None
        return _matrix_ranking(matrix, vector, depth, allowed)
    return _binary_ranking(db, key, query.embedding, vector, depth, restriction, params)


def _allowed_positions(db: Connection, key: int, matrix: StoreMatrix,
                       filters: Filter) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Matrix rows the filter admits, by the same compiled condition the SQL scans use."""
    condition, params = compile_sqlite(filters)
    ids = np.fromiter((row[0] for row in db.execute(_matching_ids(key, condition), params)), dtype=np.int64)
    positions = np.searchsorted(matrix.row_ids, ids)
    inside = positions < len(matrix.row_ids)
    positions = positions[inside]
    # A chunk written after the matrix was loaded has no row yet; the next search reloads.
    admitted: np.ndarray[Any, np.dtype[np.intp]] = positions[matrix.row_ids[positions] == ids[inside]]
    return admitted


def _matrix_ranking(matrix: StoreMatrix, vector: bytes, depth: int,
                    allowed: np.ndarray[Any, np.dtype[np.intp]] | None) -> list[tuple[int, float]]:
    query = np.frombuffer(vector, dtype=np.float32)
    if allowed is None:
        row_ids, scores = matrix.row_ids, matrix.vectors @ query
    elif 4 * len(allowed) < len(matrix.row_ids):
        # A selective filter: gathering its rows first is cheaper than scoring every row.
        row_ids, scores = matrix.row_ids[allowed], matrix.vectors[allowed] @ query
    else:
        row_ids, scores = matrix.row_ids[allowed], (matrix.vectors @ query)[allowed]
    count = min(depth, len(scores))
    if count == 0:
        return []
    best = np.argpartition(-scores, count - 1)[:count]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(row_ids[i]), float(scores[i])) for i in best]


def _binary_ranking(db: Connection, key: int, embedding: Sequence[float], vector: bytes, depth: int,
                    restriction: str, params: dict[str, Any]) -> list[tuple[int, float]]:
    wanted = max(MIN_RESCORE_CANDIDATES, depth * RESCORE_OVERSAMPLING)
    candidates = db.execute(
        f"SELECT rowid FROM vec_{key} WHERE coarse MATCH vec_quantize_binary(:q) AND k = :k{restriction}",
        {**params, "q": _padded(vector, embedding), "k": wanted},
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
    _vectors_changed(db, key)


def _vectors_changed(db: Connection, key: int) -> None:
    db.execute("INSERT INTO vector_generations (store_key, generation) VALUES (?, random()) "
               "ON CONFLICT (store_key) DO UPDATE SET generation = excluded.generation", (key,))


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
