"""`max_tool_calls` caps the server-side tool calls of one response: calls past the cap are not
run, get no item, and the model is told so in their tool message."""

from __future__ import annotations

from riposte.config import ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import stream_events
from tests.vectors.conftest import ServerFactory
from tests.vectors.test_file_search_responses import fake_store


def test_calls_past_max_tool_calls_are_not_run(
    make_vector_server: ServerFactory, embedding_upstream: ScriptedUpstream
) -> None:
    server: RunningServer = make_vector_server(
        providers=[ProviderConfig(name="fake", base_url=embedding_upstream.base_url)])
    store_id, _ = fake_store(server)
    embedding_upstream.enqueue(
        tool_calls_reply([("s1", "knowledge_search", '{"query": "rings"}'),
                          ("s2", "knowledge_search", '{"query": "moons"}')]),
        tool_calls_reply([("s3", "knowledge_search", '{"query": "again"}')]),
        text_reply("Saturn."),
    )
    events = stream_events(server, model="fake/m", input="Rings?", max_tool_calls=1,
                           tools=[{"type": "file_search", "vector_store_ids": [store_id]}])

    assert_valid_stream(events)
    final = events[-1].response
    assert final.max_tool_calls == 1
    assert [item.type for item in final.output] == ["file_search_call", "message"]
    chat = [r for r in embedding_upstream.requests if "messages" in r]
    answers = {m["tool_call_id"]: m["content"] for m in chat[2]["messages"] if m["role"] == "tool"}
    assert set(answers) == {"s1", "s2", "s3"}
    assert isinstance(answers["s1"], list)
    assert "max_tool_calls" in answers["s2"] and "max_tool_calls" in answers["s3"]
