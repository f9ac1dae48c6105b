"""The file_search tool.

- What the model sees: the function `knowledge_search`, exactly as in seed 004, because the
  recorded upstream requests carry that definition and only an identical one replays.
- Running a call: every vector store of the tool is searched concurrently; a failing store is
  reported in the outcome and never raises.
- The tool message: seed 004's text parts, byte for byte (SEED-SYSTEM.md §3.5).
- The `file_search_call` output item, with concrete values everywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from riposte.errors import InvalidRequestError
from riposte.param_path import has_control_characters
from riposte.vectors.filters import Filter, parse_filter
from riposte.vectors.index import Attributes, SearchHit, SearchMode
from riposte.vectors.params import invalid, only_keys
from riposte.vectors.ranking import HybridWeights
from riposte.vectors.service import SearchRequest

logger = logging.getLogger(__name__)

TOOL_NAME = "knowledge_search"
FUNCTION_DEFINITION: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Search for information in a database.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "The query to search for. Can be a natural language sentence or keywords.",
                },
            },
            "required": ["query"],
        },
    },
}
DEFAULT_MAX_NUM_RESULTS = 10
_CITATION_INSTRUCTION = (
    " Cite sources immediately at the end of sentences before punctuation, using `<|file-id|>` format "
    "(e.g., 'This is a fact <|file-Cn3MSNn72ENTiiq11Qda4A|>.'). Do not add extra punctuation. "
    "Use only the file IDs provided (do not invent new ones)."
)
_TOOL_FIELDS = ("type", "vector_store_ids", "filters", "max_num_results", "ranking_options")
_RANKING_FIELDS = ("ranker", "score_threshold", "hybrid_search")
_RANKERS = ("auto", "default-2024-11-15", "none")

CallStatus = Literal["completed", "incomplete", "failed"]


class StoreSearcher(Protocol):
    """What the tool needs of `VectorStoreService`: that its stores exist, and searching them."""

    async def require_store(self, store_id: str) -> None: ...

    async def search(self, store_id: str, request: SearchRequest) -> list[SearchHit]: ...


# ---------------------------------------------------------------------- the tool's configuration


@dataclass(frozen=True)
class FileSearchConfig:
    vector_store_ids: tuple[str, ...]
    filters: Filter | None = None
    raw_filters: dict[str, Any] | None = None
    max_num_results: int = DEFAULT_MAX_NUM_RESULTS
    ranker: str = "auto"
    score_threshold: float = 0.0
    hybrid: HybridWeights | None = None

    def search_request(self, query: str) -> SearchRequest:
        mode = SearchMode.HYBRID if self.hybrid is not None else SearchMode.VECTOR
        return SearchRequest(queries=[query], max_num_results=self.max_num_results, filters=self.filters,
                             score_threshold=self.score_threshold, mode=mode,
                             weights=self.hybrid or HybridWeights())

    def echoed(self) -> dict[str, Any]:
        """The tool as the response echoes it: every field concrete, ranking_options never null."""
        ranking: dict[str, Any] = {"ranker": self.ranker, "score_threshold": self.score_threshold}
        if self.hybrid is not None:
            ranking["hybrid_search"] = {"embedding_weight": self.hybrid.embedding, "text_weight": self.hybrid.text}
        return {"type": "file_search", "vector_store_ids": list(self.vector_store_ids), "filters": self.raw_filters,
                "max_num_results": self.max_num_results, "ranking_options": ranking}


def parse_tool(tool: Mapping[str, Any], param: str = "tools[0]") -> FileSearchConfig:
    """A `{"type": "file_search", ...}` tool from a request; a 400 naming the parameter if malformed."""
    only_keys(dict(tool), _TOOL_FIELDS, param)
    store_ids = tool.get("vector_store_ids")
    if not isinstance(store_ids, list) or not store_ids or not all(
            isinstance(s, str) and s and not has_control_characters(s) for s in store_ids):
        raise invalid(f"{param}.vector_store_ids", "must be a non-empty list of vector store ids")
    raw_filters = tool.get("filters")
    filters = parse_filter(raw_filters, f"{param}.filters") if raw_filters is not None else None
    limit = tool.get("max_num_results")
    if limit is None:
        limit = DEFAULT_MAX_NUM_RESULTS
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
        raise invalid(f"{param}.max_num_results", "must be an integer between 1 and 50")
    ranker, threshold, hybrid = _ranking_options(tool.get("ranking_options"), f"{param}.ranking_options")
    return FileSearchConfig(vector_store_ids=tuple(dict.fromkeys(store_ids)), filters=filters,
                            raw_filters=raw_filters, max_num_results=limit, ranker=ranker,
                            score_threshold=threshold, hybrid=hybrid)


def _ranking_options(raw: Any, param: str) -> tuple[str, float, HybridWeights | None]:
    if raw is None:
        return "auto", 0.0, None
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object")
    only_keys(raw, _RANKING_FIELDS, param)
    ranker = raw.get("ranker") or "auto"
    if ranker not in _RANKERS:
        raise invalid(f"{param}.ranker", f"must be one of {', '.join(_RANKERS)}")
    threshold = raw.get("score_threshold")
    threshold = 0.0 if threshold is None else threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise invalid(f"{param}.score_threshold", "must be a number between 0 and 1")
    return ranker, float(threshold), _hybrid(raw.get("hybrid_search"), f"{param}.hybrid_search")


def _hybrid(raw: Any, param: str) -> HybridWeights | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(param, "must be an object")
    only_keys(raw, ("embedding_weight", "text_weight"), param)
    weights = []
    for name in ("embedding_weight", "text_weight"):
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise invalid(f"{param}.{name}", "must be a number of at least 0")
        weights.append(float(value))
    return HybridWeights(embedding=weights[0], text=weights[1])


def query_from_arguments(arguments: str) -> str:
    """The `query` of a knowledge_search call's JSON arguments; a ValueError if there is none."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not JSON: {exc}") from exc
    query = parsed.get("query") if isinstance(parsed, dict) else None
    if not isinstance(query, str) or not query.strip():
        raise ValueError("the arguments have no 'query' string")
    return query


# ---------------------------------------------------------------------- running a call


@dataclass(frozen=True)
class FileSearchResult:
    vector_store_id: str
    hit: SearchHit


@dataclass(frozen=True)
class StoreFailure:
    vector_store_id: str
    message: str


@dataclass(frozen=True)
class FileSearchOutcome:
    query: str
    results: tuple[FileSearchResult, ...]
    failures: tuple[StoreFailure, ...] = ()

    @property
    def status(self) -> CallStatus:
        if not self.failures:
            return "completed"
        return "incomplete" if self.results else "failed"

    def cited_files(self) -> dict[str, str]:
        """file id → filename for every file these results came from (for citations)."""
        return {result.hit.file_id: result.hit.filename for result in self.results}

    def tool_message_content(self) -> list[dict[str, str]]:
        return tool_result_message_content(self.query, [result.hit for result in self.results])


async def run_file_search(vector_stores: StoreSearcher, tool_config: Mapping[str, Any] | FileSearchConfig,
                          query: str) -> FileSearchOutcome:
    """Search every store of the tool at once; the best `max_num_results` chunks overall, best first."""
    config = tool_config if isinstance(tool_config, FileSearchConfig) else parse_tool(tool_config)
    request = config.search_request(query)
    answers = await asyncio.gather(*(_search_one(vector_stores, store_id, request)
                                     for store_id in config.vector_store_ids))
    results = [result for found, _ in answers for result in found]
    results.sort(key=lambda result: result.hit.score, reverse=True)
    failures = tuple(failure for _, failure in answers if failure is not None)
    return FileSearchOutcome(query=query, results=tuple(results[: config.max_num_results]), failures=failures)


async def _search_one(vector_stores: StoreSearcher, store_id: str,
                      request: SearchRequest) -> tuple[list[FileSearchResult], StoreFailure | None]:
    try:
        hits = await vector_stores.search(store_id, request)
    except InvalidRequestError as exc:
        return [], StoreFailure(store_id, exc.message)
    except Exception as exc:  # one broken store must not take the turn down with it
        logger.warning("file_search over %s failed", store_id, exc_info=True)
        return [], StoreFailure(store_id, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
    return [FileSearchResult(vector_store_id=store_id, hit=hit) for hit in hits], None


# ---------------------------------------------------------------------- what the model reads


def tool_result_message_content(query: str, results: Sequence[SearchHit]) -> list[dict[str, str]]:
    """The tool message's text parts, exactly as seed 004 has them."""
    parts = [f"knowledge_search tool found {len(results)} chunks:\nBEGIN of knowledge_search tool results.\n"]
    for position, hit in enumerate(results, start=1):
        metadata = f"document_id: {hit.file_id}, score: {hit.score}"
        attributes = chunk_metadata(hit)
        if attributes:
            metadata += f", attributes: {attributes}"
        parts.append(f"[{position}] {metadata} (cite as <|{hit.file_id}|>)\n{hit.text}\n")
    parts.append("END of knowledge_search tool results.\n")
    closing = (f'The above results were retrieved to help answer the user\'s query: "{query}". '
               "Use them as supporting information only in answering this query.")
    parts.append(closing + (_CITATION_INSTRUCTION if results else "") + "\n")
    return [{"type": "text", "text": part} for part in parts]


def chunk_metadata(hit: SearchHit) -> dict[str, Any]:
    """The chunk metadata the seed system printed: the attributes, then filename, document id and
    token counts; numbers as floats, the way its storage gave them back."""
    metadata: dict[str, Any] = {key: _seed_number(value) for key, value in hit.attributes.items()}
    metadata.update(filename=hit.filename, document_id=hit.file_id, token_count=float(hit.token_count),
                    metadata_token_count=float(hit.metadata_token_count))
    return metadata


def _seed_number(value: str | int | float | bool) -> str | float | bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# ---------------------------------------------------------------------- the output item


def file_search_call_item(item_id: str, outcome: FileSearchOutcome, include_results: bool) -> dict[str, Any]:
    """The `file_search_call` output item; `results` only when the request's include asked for them."""
    results = [_result_object(result) for result in outcome.results] if include_results else None
    return {"id": item_id, "type": "file_search_call", "status": outcome.status, "queries": [outcome.query],
            "results": results}


def traced_sources(outcome: FileSearchOutcome) -> tuple[dict[str, Any], ...]:
    """The chunks found, as the inspector's trace keeps them (with each chunk's index in its file)."""
    return tuple({**_result_object(result), "chunk_index": result.hit.chunk_index} for result in outcome.results)


def _result_object(result: FileSearchResult) -> dict[str, Any]:
    hit = result.hit
    attributes: Attributes = dict(hit.attributes)
    return {"file_id": hit.file_id, "filename": hit.filename, "text": hit.text, "score": hit.score,
            "attributes": attributes, "vector_store_id": result.vector_store_id}
