"""Hybrid ranking: weighted reciprocal rank fusion of a vector ranking and a keyword ranking."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

# The usual RRF constant (Cormack et al.), also what the seed system used.
RRF_K = 60
# Each ranking feeding hybrid fusion looks this many times deeper than the results wanted.
HYBRID_DEPTH = 3
_WORD = re.compile(r"\w+")

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class HybridWeights:
    embedding: float = 1.0
    text: float = 1.0


def reciprocal_rank_fusion(vector_ranked: Sequence[T], keyword_ranked: Sequence[T],
                           weights: HybridWeights = HybridWeights()) -> list[tuple[T, float]]:
    """Fused (id, score) pairs, best first, scores scaled into [0, 1].

    Raw RRF scores top out near 2/61, which would make `score_threshold` meaningless; dividing by
    the best possible score (first in both rankings) keeps thresholds on the same 0-1 scale as the
    other modes. Ties keep vector order, then keyword order.
    """
    scores: dict[T, float] = {}
    for ranking, weight in ((vector_ranked, weights.embedding), (keyword_ranked, weights.text)):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (RRF_K + rank)
    best_possible = (weights.embedding + weights.text) / (RRF_K + 1)
    if best_possible <= 0:
        return [(key, 0.0) for key in scores]
    fused = sorted(scores.items(), key=lambda pair: pair[1], reverse=True)
    return [(key, score / best_possible) for key, score in fused]


def keyword_score(bm25: float) -> float:
    """A BM25-style relevance (higher is better, unbounded) mapped into [0, 1)."""
    relevance = max(bm25, 0.0)
    return relevance / (1.0 + relevance)


# Function words that match most chunks of any English corpus: they make a keyword query cost a
# scan of nearly every chunk while adding almost nothing to BM25 (their IDF is close to zero).
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he",
    "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me",
    "more", "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
    "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with",
    "would", "you", "your", "yours",
])


def keyword_terms(text: str) -> list[str]:
    """The words of a keyword query worth matching: without stopwords, unless that leaves none."""
    words = query_words(text)
    return [word for word in words if word not in STOPWORDS] or words


def query_words(text: str) -> list[str]:
    """The distinct words of a keyword query, lower-cased, in order. Only word characters survive,
    so no query syntax of either full-text engine can come from the client."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))
