"""One contract for every vector index: sqlite-vec + FTS5 and pgvector + PostgreSQL full-text.

The filter cases are checked against a small reference evaluator written here, so both indexes
must agree with it (and so with each other) on every operator, type rule and nesting.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from riposte.vectors import sqlite_index
from riposte.vectors.filters import Comparison, Compound, Filter, parse_filter
from riposte.vectors.index import EmbeddedChunk, IndexedFile, SearchMode, SearchQuery, VectorIndex
from riposte.vectors.pg_index import PgVectorIndex
from riposte.vectors.ranking import HybridWeights
from riposte.vectors.sqlite_index import SqliteVecIndex

STORE = "vs_contract"


@pytest.fixture(params=["sqlite-vec", "pgvector"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    if request.param == "sqlite-vec":
        sqlite = SqliteVecIndex(tmp_path / "index.db")
        yield sqlite
        await sqlite.aclose()
        return
    engine = create_async_engine(request.getfixturevalue("pgvector_database_url"))
    yield PgVectorIndex(engine)
    await engine.dispose()


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def add(index: VectorIndex, file_id: str, texts: list[str], vectors: list[list[float]],
              attributes: dict[str, Any] | None = None, store: str = STORE) -> None:
    chunks = [EmbeddedChunk(index=i, text=t, token_count=len(t.split()), embedding=v)
              for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    await index.replace_file(store, IndexedFile(file_id=file_id, filename=f"{file_id}.txt",
                                                attributes=attributes or {}, metadata_token_count=7), chunks)


def vector_query(vector: list[float], limit: int = 10, **options: Any) -> SearchQuery:
    return SearchQuery(text="", embedding=vector, limit=limit, **options)


async def test_vector_search_ranks_by_cosine_similarity(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 3)
    await add(index, "file-a", ["alpha"], [unit(1, 0, 0)])
    await add(index, "file-b", ["beta"], [unit(1, 1, 0)])
    await add(index, "file-c", ["gamma"], [unit(0, 0, 1)])
    hits = await index.search(STORE, vector_query(unit(1, 0.1, 0), limit=2))
    assert [hit.file_id for hit in hits] == ["file-a", "file-b"]
    assert hits[0].score == pytest.approx(sum(a * b for a, b in zip(unit(1, 0.1, 0), unit(1, 0, 0), strict=True)),
                                          abs=1e-5)
    first = hits[0]
    assert (first.filename, first.text, first.chunk_index, first.token_count, first.metadata_token_count) == \
        ("file-a.txt", "alpha", 0, 1, 7)


async def test_keyword_search_matches_words_with_stemming(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 2)
    await add(index, "file-run", ["the runner was running fast"], [unit(1, 0)])
    await add(index, "file-swim", ["she swims in the lake"], [unit(0, 1)])
    hits = await index.search(STORE, SearchQuery(text="run!", embedding=None, limit=5, mode=SearchMode.KEYWORD))
    assert [hit.file_id for hit in hits] == ["file-run"]
    assert 0 < hits[0].score < 1
    assert await index.search(STORE, SearchQuery(text="?? ::", embedding=None, limit=5,
                                                 mode=SearchMode.KEYWORD)) == []


async def test_hybrid_search_fuses_both_rankings(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 2)
    await add(index, "file-both", ["quarterly revenue report"], [unit(1, 0.1)])
    await add(index, "file-vector", ["unrelated words"], [unit(1, 0)])
    await add(index, "file-keyword", ["revenue figures"], [unit(0, 1)])
    hits = await index.search(STORE, SearchQuery(text="revenue report", embedding=unit(1, 0.1), limit=3,
                                                 mode=SearchMode.HYBRID))
    assert hits[0].file_id == "file-both"
    assert hits[0].score == pytest.approx(1.0)
    assert {hit.file_id for hit in hits} == {"file-both", "file-vector", "file-keyword"}
    text_only = await index.search(STORE, SearchQuery(text="revenue figures", embedding=unit(1, 0), limit=1,
                                                      mode=SearchMode.HYBRID, weights=HybridWeights(0, 1)))
    assert [hit.file_id for hit in text_only] == ["file-keyword"]


async def test_score_threshold_drops_weaker_results(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 2)
    await add(index, "file-near", ["near"], [unit(1, 0.05)])
    await add(index, "file-far", ["far"], [unit(0.2, 1)])
    hits = await index.search(STORE, vector_query(unit(1, 0), score_threshold=0.5))
    assert [hit.file_id for hit in hits] == ["file-near"]


async def test_filters_run_inside_the_query_not_after_it(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 2)
    for n in range(30):
        await add(index, f"file-{n}", [f"chunk {n}"], [unit(1, n / 30)], {"rank": n})
    wanted = parse_filter({"type": "gte", "key": "rank", "value": 27})
    hits = await index.search(STORE, vector_query(unit(1, 0), limit=2, filters=wanted))
    # The two most similar chunks that pass the filter, though 27 others are more similar.
    assert [hit.file_id for hit in hits] == ["file-27", "file-28"]


ATTRIBUTES: dict[str, dict[str, Any]] = {
    "file-us-mkt": {"region": "us", "category": "marketing", "date": 1672531200, "priority": 2, "public": True},
    "file-us-eng": {"region": "us", "category": "engineering", "date": 1680307200, "priority": 1.5,
                    "public": False},
    "file-eu-mkt": {"region": "eu", "category": "marketing", "date": 1672531200, "priority": "high"},
    "file-asia": {"region": "asia", "category": "sales", "date": 1688169600, "public": True},
    "file-bare": {},
    "file-numeric-region": {"region": 5, "date": "2023-07-01"},
}

FILTERS: list[dict[str, Any]] = [
    {"type": "eq", "key": "region", "value": "us"},
    {"type": "ne", "key": "region", "value": "us"},
    {"type": "eq", "key": "region", "value": 5},
    {"type": "eq", "key": "region", "value": "5"},
    {"type": "gt", "key": "date", "value": 1672531200},
    {"type": "gte", "key": "date", "value": 1672531200},
    {"type": "lt", "key": "date", "value": 1688169600},
    {"type": "lte", "key": "date", "value": 1680307200.0},
    {"type": "gt", "key": "region", "value": "eu"},
    {"type": "lte", "key": "date", "value": "2024"},
    {"type": "eq", "key": "public", "value": True},
    {"type": "eq", "key": "public", "value": False},
    {"type": "ne", "key": "public", "value": True},
    {"type": "eq", "key": "priority", "value": 1.5},
    {"type": "gt", "key": "priority", "value": 1},
    {"type": "in", "key": "region", "value": ["eu", "asia", 5]},
    {"type": "nin", "key": "region", "value": ["eu", "asia"]},
    {"type": "in", "key": "priority", "value": [2, "high"]},
    {"type": "and", "filters": [{"type": "eq", "key": "region", "value": "us"},
                                {"type": "eq", "key": "category", "value": "marketing"}]},
    {"type": "or", "filters": [{"type": "eq", "key": "category", "value": "engineering"},
                               {"type": "eq", "key": "region", "value": "asia"}]},
    {"type": "and", "filters": [
        {"type": "gte", "key": "date", "value": 1672531200},
        {"type": "or", "filters": [{"type": "eq", "key": "category", "value": "sales"},
                                   {"type": "and", "filters": [{"type": "eq", "key": "region", "value": "eu"},
                                                               {"type": "ne", "key": "public", "value": True}]}]},
    ]},
    {"type": "eq", "key": "missing", "value": "x"},
    {"type": "ne", "key": "missing", "value": "x"},
]


def reference(filter_: Filter, attributes: dict[str, Any]) -> bool:
    if isinstance(filter_, Compound):
        results = [reference(child, attributes) for child in filter_.filters]
        return all(results) if filter_.op == "and" else any(results)
    return compare(filter_, attributes)


def compare(filter_: Comparison, attributes: dict[str, Any]) -> bool:
    if filter_.key not in attributes:
        return False
    actual = attributes[filter_.key]
    if filter_.op in ("in", "nin"):
        assert isinstance(filter_.value, tuple)
        member = any(same_type(actual, v) and actual == v for v in filter_.value)
        return member if filter_.op == "in" else not member
    equal = same_type(actual, filter_.value) and actual == filter_.value
    if filter_.op in ("eq", "ne"):
        return equal if filter_.op == "eq" else not equal
    if not same_type(actual, filter_.value):
        return False
    return {"gt": actual > filter_.value, "gte": actual >= filter_.value, "lt": actual < filter_.value,
            "lte": actual <= filter_.value}[filter_.op]


def same_type(a: Any, b: Any) -> bool:
    kinds = [bool if isinstance(x, bool) else str if isinstance(x, str) else float for x in (a, b)]
    return kinds[0] is kinds[1]


@pytest.fixture
async def attribute_store(index: VectorIndex) -> VectorIndex:
    await index.ensure_store(STORE, 2)
    for n, (file_id, attributes) in enumerate(ATTRIBUTES.items()):
        await add(index, file_id, [f"text {n}"], [unit(1, n)], attributes)
    return index


@pytest.mark.parametrize("raw", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
async def test_filters_agree_with_the_reference_semantics(attribute_store: VectorIndex, raw: dict[str, Any]) -> None:
    filter_ = parse_filter(raw)
    expected = {file_id for file_id, attributes in ATTRIBUTES.items() if reference(filter_, attributes)}
    for mode in (SearchMode.VECTOR, SearchMode.HYBRID):
        hits = await attribute_store.search(STORE, SearchQuery(text="text", embedding=unit(1, 1), limit=50,
                                                               mode=mode, filters=filter_))
        assert {hit.file_id for hit in hits} == expected, mode
    keyword = await attribute_store.search(STORE, SearchQuery(text="text", embedding=None, limit=50,
                                                              mode=SearchMode.KEYWORD, filters=filter_))
    assert {hit.file_id for hit in keyword} == expected


async def test_replacing_deleting_and_updating_a_file(index: VectorIndex) -> None:
    await index.ensure_store(STORE, 2)
    await add(index, "file-a", ["old one", "old two"], [unit(1, 0), unit(1, 1)], {"v": 1})
    await add(index, "file-a", ["new"], [unit(1, 0)], {"v": 2})
    hits = await index.search(STORE, vector_query(unit(1, 0)))
    assert [(hit.text, hit.attributes) for hit in hits] == [("new", {"v": 2})]
    await index.update_attributes(STORE, "file-a", {"v": 3, "tag": "x"})
    tagged = await index.search(STORE, vector_query(unit(1, 0), filters=parse_filter(
        {"type": "eq", "key": "tag", "value": "x"})))
    assert [hit.attributes for hit in tagged] == [{"v": 3, "tag": "x"}]
    await index.delete_file(STORE, "file-a")
    assert await index.search(STORE, vector_query(unit(1, 0))) == []


async def test_chunk_counts_per_file_follow_replacement_and_deletion(index: VectorIndex) -> None:
    assert await index.chunk_counts("vs_unknown") == {}
    await index.ensure_store(STORE, 2)
    await index.ensure_store("vs_other", 2)
    await add(index, "file-a", ["one", "two", "three"], [unit(1, 0), unit(1, 1), unit(0, 1)])
    await add(index, "file-b", ["only"], [unit(1, 0)])
    await add(index, "file-c", ["elsewhere"], [unit(1, 0)], store="vs_other")
    assert await index.chunk_counts(STORE) == {"file-a": 3, "file-b": 1}
    await add(index, "file-a", ["new"], [unit(1, 0)])
    await index.delete_file(STORE, "file-b")
    assert await index.chunk_counts(STORE) == {"file-a": 1}
    await add(index, "file-a", ["first", "second"], [unit(1, 0), unit(0, 1)], {"v": 1})
    chunks = await index.file_chunks(STORE, "file-a")
    assert [(c.chunk_index, c.text, c.attributes) for c in chunks] == [(0, "first", {"v": 1}), (1, "second", {"v": 1})]
    assert await index.file_chunks(STORE, "file-b") == [] and await index.file_chunks("vs_unknown", "file-a") == []


async def test_stores_are_isolated_and_droppable(index: VectorIndex) -> None:
    await index.ensure_store("vs_one", 2)
    await index.ensure_store("vs_one", 2)  # idempotent
    await index.ensure_store("vs_two", 3)
    await add(index, "file-1", ["in one"], [unit(1, 0)], store="vs_one")
    await add(index, "file-2", ["in two"], [unit(1, 0, 0)], store="vs_two")
    assert [hit.file_id for hit in await index.search("vs_one", vector_query(unit(1, 0)))] == ["file-1"]
    with pytest.raises(ValueError, match="dimensional"):
        await index.ensure_store("vs_one", 3)
    await index.drop_store("vs_one")
    assert await index.search("vs_one", vector_query(unit(1, 0))) == []
    assert await index.search("vs_unknown", vector_query(unit(1, 0))) == []
    assert [hit.file_id for hit in await index.search("vs_two", vector_query(unit(1, 0, 0)))] == ["file-2"]


async def test_sqlite_large_stores_are_scanned_exactly_in_memory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_index, "EXACT_SCAN_MAX_CHUNKS", 0)
    index = SqliteVecIndex(tmp_path / "index.db")
    try:
        await index.ensure_store(STORE, 3)
        vectors = {f"file-{n}": unit(1, n / 10, -n / 20) for n in range(20)}
        for n, (file_id, vector) in enumerate(vectors.items()):
            await add(index, file_id, [f"t{n}"], [vector], {"n": n})
        query = unit(1, 0.3, -0.15)
        exact = sorted(vectors, key=lambda f: -sum(a * b for a, b in zip(vectors[f], query, strict=True)))
        hits = await index.search(STORE, vector_query(query, limit=3))
        assert [hit.file_id for hit in hits] == exact[:3]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        allowed = parse_filter({"type": "in", "key": "n", "value": [1, 5, 7]})
        filtered = await index.search(STORE, vector_query(query, limit=2, filters=allowed))
        assert [hit.file_id for hit in filtered] == [f for f in exact if f in ("file-1", "file-5", "file-7")][:2]
    finally:
        await index.aclose()


async def test_sqlite_in_memory_scans_follow_writes_from_any_connection(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_index, "EXACT_SCAN_MAX_CHUNKS", 0)
    searching, writing = SqliteVecIndex(tmp_path / "index.db"), SqliteVecIndex(tmp_path / "index.db")
    try:
        await searching.ensure_store(STORE, 2)
        await add(searching, "file-a", ["a"], [unit(1, 0)])
        await add(searching, "file-b", ["b"], [unit(0, 1)])
        before = await searching.search(STORE, vector_query(unit(1, 0.1)))
        assert [hit.file_id for hit in before] == ["file-a", "file-b"]
        # Another connection (as another process would) rewrites file-b next to the query.
        await add(writing, "file-b", ["b"], [unit(1, 0.1)])
        hits = await searching.search(STORE, vector_query(unit(1, 0.1)))
        assert [hit.file_id for hit in hits] == ["file-b", "file-a"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        await writing.delete_file(STORE, "file-b")
        assert [hit.file_id for hit in await searching.search(STORE, vector_query(unit(1, 0.1)))] == ["file-a"]
    finally:
        await searching.aclose()
        await writing.aclose()


async def test_sqlite_stores_beyond_the_memory_budget_rescore_binary_candidates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_index, "EXACT_SCAN_MAX_CHUNKS", 0)
    monkeypatch.setattr(sqlite_index, "MATRIX_MEMORY_BUDGET", 0)
    index = SqliteVecIndex(tmp_path / "index.db")
    try:
        await index.ensure_store(STORE, 3)
        for n in range(6):
            await add(index, f"file-{n}", [f"t{n}"], [unit(1, n / 5, 0.1)], {"n": n})
        only_odd = parse_filter({"type": "in", "key": "n", "value": [1, 3, 5]})
        hits = await index.search(STORE, vector_query(unit(1, 0.6, 0.1), limit=2, filters=only_odd))
        assert [hit.file_id for hit in hits] == ["file-3", "file-5"]
    finally:
        await index.aclose()
