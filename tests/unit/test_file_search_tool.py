"""The file_search tool's pure pieces, checked byte for byte against seed 004."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import FileSearchTool, ResponseFileSearchToolCall

from riposte.errors import InvalidRequestError
from riposte.tools.file_search import (
    FUNCTION_DEFINITION,
    FileSearchOutcome,
    FileSearchResult,
    StoreFailure,
    file_search_call_item,
    parse_tool,
    query_from_arguments,
    run_file_search,
    tool_result_message_content,
)
from riposte.vectors.chunking import AUTO, chunk_text
from riposte.vectors.index import SearchHit, SearchMode
from riposte.vectors.ingest import metadata_token_count
from riposte.vectors.service import SearchRequest

SEED_004 = Path(__file__).resolve().parents[2] / "examples" / "recordings" / "004_fee50f062ba79347.json"
QUERY = "marketing updates October 2023"
# (file id, filename, text, attributes, score) in the order the seed's search returned them.
SEED_HITS = [
    ("file-284290576317", "us_engineering_q2.txt",
     "US technical updates for Q2 2023. New features deployed in the US region.",
     {"region": "us", "category": "engineering", "date": 1680307200}, 1.1939300430192143),
    ("file-284290576316", "us_marketing_q1.txt",
     "US promotional campaigns for Q1 2023. Revenue increased by 15% in the US region.",
     {"region": "us", "category": "marketing", "date": 1672531200}, 0.9860226028240189),
    ("file-284290576318", "eu_marketing_q1.txt",
     "European advertising campaign results for Q1 2023. Strong growth in EU markets.",
     {"region": "eu", "category": "marketing", "date": 1672531200}, 0.9676964172910248),
    ("file-284290576319", "asia_sales_q3.txt",
     "Asia Pacific revenue figures for Q3 2023. Record breaking quarter in Asia.",
     {"region": "asia", "category": "sales", "date": 1688169600}, 0.7632951871120561),
]


def seed_request() -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(SEED_004.read_bytes())["request"]["body"]
    return body


def seed_hit(file_id: str, filename: str, text: str, attributes: dict[str, Any], score: float) -> SearchHit:
    # Token counts computed the way ingestion computes them, not copied from the seed.
    (chunk,) = chunk_text(text, AUTO)
    return SearchHit(file_id=file_id, filename=filename, chunk_index=0, text=chunk.text, score=score,
                     attributes=attributes, token_count=chunk.token_count,
                     metadata_token_count=metadata_token_count(attributes, filename))


def test_the_model_sees_seed_004s_knowledge_search_function() -> None:
    assert seed_request()["tools"] == [FUNCTION_DEFINITION]


def test_tool_message_reproduces_seed_004_byte_for_byte() -> None:
    tool_message = seed_request()["messages"][2]
    hits = [seed_hit(*values) for values in SEED_HITS]
    assert tool_result_message_content(QUERY, hits) == tool_message["content"]


def test_without_results_the_message_has_no_citation_instruction() -> None:
    content = tool_result_message_content("nothing", [])
    assert [part["text"] for part in content] == [
        "knowledge_search tool found 0 chunks:\nBEGIN of knowledge_search tool results.\n",
        "END of knowledge_search tool results.\n",
        'The above results were retrieved to help answer the user\'s query: "nothing". Use them as supporting '
        "information only in answering this query.\n",
    ]


def test_file_search_call_item_parses_as_the_sdk_type() -> None:
    outcome = FileSearchOutcome(query=QUERY, results=(FileSearchResult("vs_1", seed_hit(*SEED_HITS[0])),))
    item = file_search_call_item("fs_1", outcome, include_results=True)
    parsed = ResponseFileSearchToolCall.model_validate(item)
    assert (parsed.id, parsed.status, parsed.queries) == ("fs_1", "completed", [QUERY])
    assert item["results"] == [{
        "file_id": "file-284290576317", "filename": "us_engineering_q2.txt", "text": SEED_HITS[0][2],
        "score": 1.1939300430192143, "attributes": {"region": "us", "category": "engineering", "date": 1680307200},
        "vector_store_id": "vs_1",
    }]
    assert file_search_call_item("fs_1", outcome, include_results=False)["results"] is None


class FakeStores:
    def __init__(self, hits: dict[str, list[SearchHit]], broken: frozenset[str] = frozenset()) -> None:
        self.hits = hits
        self.broken = broken
        self.requests: list[tuple[str, SearchRequest]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def search(self, store_id: str, request: SearchRequest) -> list[SearchHit]:
        self.requests.append((store_id, request))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1
        if store_id in self.broken:
            raise RuntimeError("disk on fire")
        return self.hits.get(store_id, [])


def hit(file_id: str, score: float) -> SearchHit:
    return SearchHit(file_id=file_id, filename=f"{file_id}.txt", chunk_index=0, text=file_id, score=score,
                     attributes={}, token_count=1, metadata_token_count=1)


async def test_run_searches_every_store_concurrently_and_keeps_the_best() -> None:
    stores = FakeStores({"vs_a": [hit("file-a1", 0.9), hit("file-a2", 0.2)], "vs_b": [hit("file-b1", 0.5)]})
    outcome = await run_file_search(stores, {"type": "file_search", "vector_store_ids": ["vs_a", "vs_b"],
                                             "max_num_results": 2}, "q")
    assert stores.most_in_flight == 2
    assert [(r.vector_store_id, r.hit.file_id) for r in outcome.results] == [("vs_a", "file-a1"), ("vs_b", "file-b1")]
    assert outcome.status == "completed"
    assert outcome.cited_files() == {"file-a1": "file-a1.txt", "file-b1": "file-b1.txt"}
    assert stores.requests[0][1] == SearchRequest(queries=["q"], max_num_results=2)


async def test_a_failing_store_is_reported_not_raised() -> None:
    stores = FakeStores({"vs_ok": [hit("file-1", 0.7)]}, broken=frozenset({"vs_bad"}))
    partial = await run_file_search(stores, {"type": "file_search", "vector_store_ids": ["vs_ok", "vs_bad"]}, "q")
    assert (partial.status, [r.hit.file_id for r in partial.results]) == ("incomplete", ["file-1"])
    assert partial.failures == (StoreFailure("vs_bad", "RuntimeError: disk on fire"),)
    failed = await run_file_search(stores, {"type": "file_search", "vector_store_ids": ["vs_bad"]}, "q")
    assert (failed.status, failed.results) == ("failed", ())
    assert "0 chunks" in failed.tool_message_content()[0]["text"]


def test_tool_config_is_echoed_with_concrete_values() -> None:
    config = parse_tool({"type": "file_search", "vector_store_ids": ["vs_1"]})
    echoed = config.echoed()
    assert echoed == {"type": "file_search", "vector_store_ids": ["vs_1"], "filters": None, "max_num_results": 10,
                      "ranking_options": {"ranker": "auto", "score_threshold": 0.0}}
    FileSearchTool.model_validate(echoed)


def test_hybrid_weights_select_hybrid_search() -> None:
    config = parse_tool({"type": "file_search", "vector_store_ids": ["vs_1"], "filters": {
        "type": "eq", "key": "region", "value": "us"}, "ranking_options": {
        "score_threshold": 0.25, "hybrid_search": {"embedding_weight": 1, "text_weight": 0.5}}})
    request = config.search_request("q")
    assert (request.mode, request.score_threshold, request.weights.text) == (SearchMode.HYBRID, 0.25, 0.5)
    assert config.echoed()["ranking_options"]["hybrid_search"] == {"embedding_weight": 1.0, "text_weight": 0.5}


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "file_search"}, "tools[3].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": []}, "tools[3].vector_store_ids"),
    ({"type": "file_search", "vector_store_ids": ["vs"], "max_num_results": 51}, "tools[3].max_num_results"),
    ({"type": "file_search", "vector_store_ids": ["vs"], "filters": {"type": "like"}}, "tools[3].filters.type"),
    ({"type": "file_search", "vector_store_ids": ["vs"], "ranking_options": {"score_threshold": 2}},
     "tools[3].ranking_options.score_threshold"),
    ({"type": "file_search", "vector_store_ids": ["vs"], "surprise": 1}, "tools[3].surprise"),
])
def test_malformed_tools_are_rejected_naming_the_parameter(tool: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_tool(tool, "tools[3]")
    assert raised.value.param == param


def test_query_comes_from_the_call_arguments() -> None:
    assert query_from_arguments('{"query":"marketing updates October 2023"}') == QUERY
    for broken in ("", "{", '{"q": 1}', '{"query": "  "}', "[]"):
        with pytest.raises(ValueError):
            query_from_arguments(broken)
