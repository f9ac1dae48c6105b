"""file_search inside /v1/responses: the tool loop, its events, citations and history."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from riposte import ids
from riposte.config import InferenceMode, ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import stream_events
from tests.vectors.conftest import ServerFactory
from tests.vectors.helpers import SEED_FILES, client, upload, wait_for_file

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "recordings" / "reference"
SEED_004 = REPO / "examples" / "recordings" / "004_fee50f062ba79347.json"
SCOPE = ("tests/integration/responses/test_file_search.py::"
         "test_response_file_search_streaming_events[openai_client-txt=openai/gpt-4o]")


def recorded_text(path: Path) -> str:
    data = json.loads(path.read_text())
    return "".join(choice["delta"].get("content") or ""
                   for chunk in data["response"]["body"] for choice in chunk["__data__"].get("choices") or [])


def test_seed_004_replays_end_to_end_with_file_search_events(
    make_vector_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())
    server = make_vector_server(inference_mode=InferenceMode.REPLAY, recordings_dir=REFERENCE,
                                providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])
    headers = {"X-Riposte-Replay-Scope": SCOPE}
    sdk = client(server, default_headers=headers)
    store = sdk.vector_stores.create(name="test_vector_store_with_filters", extra_body={
        "embedding_model": "openai/text-embedding-3-small", "embedding_dimension": 1536})
    for name, text, attributes in SEED_FILES:
        file_id = upload(sdk, name, text)
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, attributes=attributes)
        assert wait_for_file(sdk, store.id, file_id).status == "completed"

    events = stream_events(server, headers=headers, model="openai/gpt-4o", input="What are the marketing updates?",
                           tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
                           include=["file_search_call.results"])

    assert_valid_stream(events)
    types = [e.type for e in events]
    searching = [t for t in types if t.startswith("response.file_search_call.")]
    assert searching == ["response.file_search_call.in_progress", "response.file_search_call.searching",
                         "response.file_search_call.completed"]
    final = events[-1].response
    search_call, message = final.output
    assert search_call.type == "file_search_call" and search_call.status == "completed"
    assert search_call.queries == ["marketing updates October 2023"]
    assert {r.filename for r in search_call.results} == {name for name, _, _ in SEED_FILES}
    assert all(r.vector_store_id == store.id and r.file_id.startswith("file-") for r in search_call.results)
    assert message.content[0].text == recorded_text(SEED_004)
    echoed = final.tools[0]
    assert echoed.ranking_options is not None and echoed.max_num_results == 10

    # The chain replays the search history, tool message included (the recording system's own turn 2).
    follow_up = sdk.responses.retrieve(final.id)
    assert follow_up.output_text == recorded_text(SEED_004)


@pytest.fixture
def search_server(make_vector_server: ServerFactory, embedding_upstream: ScriptedUpstream) -> RunningServer:
    return make_vector_server(providers=[ProviderConfig(name="fake", base_url=embedding_upstream.base_url)])


def fake_store(server: RunningServer) -> tuple[str, str]:
    sdk = client(server)
    store = sdk.vector_stores.create(name="docs", extra_body={"embedding_model": "fake/emb",
                                                                "embedding_dimension": 8})
    file_id = upload(sdk, "saturn.txt", "Saturn has the most spectacular rings of all planets.")
    sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    assert wait_for_file(sdk, store.id, file_id).status == "completed"
    return store.id, file_id


def test_citation_markers_become_annotations_and_events(
    search_server: RunningServer, embedding_upstream: ScriptedUpstream
) -> None:
    store_id, file_id = fake_store(search_server)
    embedding_upstream.enqueue(
        tool_calls_reply([("call_s1", "knowledge_search", '{"query": "rings"}')]),
        text_reply(f"Saturn has rings <|{file_id}|>. Made up <|file-nope|>.", pieces=9),
    )
    events = stream_events(search_server, model="fake/m", input="Which planet has rings?",
                           tools=[{"type": "file_search", "vector_store_ids": [store_id]}])

    assert_valid_stream(events)
    message = events[-1].response.output[-1]
    text = message.content[0].text
    assert text == "Saturn has rings. Made up."
    [annotation] = message.content[0].annotations
    assert (annotation.type, annotation.file_id, annotation.filename, annotation.index) == (
        "file_citation", file_id, "saturn.txt", text.index(". Made"))
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert [e.annotation["file_id"] if isinstance(e.annotation, dict) else e.annotation.file_id
            for e in added] == [file_id]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == text

    tool_message = embedding_upstream.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_s1"
    assert tool_message["content"][0]["text"].startswith("knowledge_search tool found 1 chunks:")
    assert f"(cite as <|{file_id}|>)" in tool_message["content"][1]["text"]


def test_previous_response_id_replays_the_search_turn_exactly(
    search_server: RunningServer, embedding_upstream: ScriptedUpstream
) -> None:
    store_id, file_id = fake_store(search_server)
    embedding_upstream.enqueue(
        tool_calls_reply([("call_s1", "knowledge_search", '{"query": "rings"}')]),
        text_reply(f"Saturn <|{file_id}|>."),
        text_reply("Yes."),
    )
    sdk = client(search_server)
    tools = [{"type": "file_search", "vector_store_ids": [store_id]}]
    first = sdk.responses.create(model="fake/m", input="Rings?", tools=tools)
    sdk.responses.create(model="fake/m", input="Sure?", tools=tools, previous_response_id=first.id)

    second_call, chained = embedding_upstream.requests[1], embedding_upstream.requests[2]
    assert chained["messages"][:-1] == [*second_call["messages"], {"role": "assistant",
                                                                   "content": f"Saturn <|{file_id}|>."}]
    assert chained["messages"][-1] == {"role": "user", "content": "Sure?"}


def test_an_unknown_store_is_a_404_naming_it_before_the_model_is_called(
    search_server: RunningServer, embedding_upstream: ScriptedUpstream
) -> None:
    store_id, _ = fake_store(search_server)
    reply = httpx.post(f"{search_server.base_url}/responses", json={
        "model": "fake/m", "input": "Rings?",
        "tools": [{"type": "file_search", "vector_store_ids": [store_id, "vs_missing"]}]})
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"] == {"message": "No vector store with id 'vs_missing' found.",
                                     "type": "invalid_request_error", "code": "not_found",
                                     "param": "tools[0].vector_store_ids[1]"}
    assert embedding_upstream.requests == []
