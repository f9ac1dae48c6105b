"""web_search inside /v1/responses: the reference recording replayed end to end, live providers
against a fake search API, the offline corpus (with a proof that nothing goes out), url_citation
annotations, record/replay of provider calls, and what a server without a provider does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, WebSearchTool, set_tracing_disabled
from agents.items import ToolCallItem

from riposte.config import InferenceMode, ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import REFERENCE_RECORDINGS, ServerFactory
from tests.fakes.fake_search import FakeSearch
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import sdk, stream_events, strict_create

set_tracing_disabled(True)  # tracing would export spans to OpenAI: never from a test
SCOPE = ("tests/integration/responses/test_tool_responses.py::"
         "test_response_non_streaming_web_search[openai_client-txt=openai/gpt-4o-llama_experts]")
LLAMA_QUESTION = "How many experts does the Llama 4 Maverick model have?"
OPENAI = ProviderConfig(name="openai", base_url="https://api.openai.com/v1")
SATURN_URL = "https://science.nasa.gov/saturn/"
SATURN_DOC = f"""---
url: {SATURN_URL}
title: Saturn - NASA Science
---
Saturn is the sixth planet from the Sun. Its rings are made of chunks of ice and rock.

The rings extend up to 282,000 km from the planet.
"""
MARS_DOC = {"url": "https://en.wikipedia.org/wiki/Mars", "title": "Mars - Wikipedia",
            "content": "Mars is the fourth planet from the Sun. It has two small moons."}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Web search keeps no state of its own: SQLite is enough here (storage has its own suites)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    (directory / "saturn.md").write_text(SATURN_DOC)
    (directory / "mars.json").write_text(json.dumps(MARS_DOC))
    return directory


@pytest.fixture
def search_api() -> Iterator[FakeSearch]:
    with FakeSearch() as fake:
        yield fake


# The fake search API listens on loopback, which the outbound policy only allows when told to.
LOOPBACK_ALLOWED = {"allow_loopback": True}


def web_server(make_server: ServerFactory, upstream: ScriptedUpstream, outbound: dict[str, Any] | None = None,
               **web_search: Any) -> RunningServer:
    return make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                       web_search=web_search, outbound=LOOPBACK_ALLOWED if outbound is None else outbound)


def tool_message(request: dict[str, Any]) -> str:
    [content] = [m["content"] for m in request["messages"] if m["role"] == "tool"]
    assert isinstance(content, str)
    return content


# ------------------------------------------------------------------ the reference recording


@pytest.fixture
def replay_server(make_server: ServerFactory) -> RunningServer:
    return make_server(inference_mode=InferenceMode.REPLAY, recordings_dir=REFERENCE_RECORDINGS, providers=[OPENAI],
                       web_search={"provider": "tavily"})


def test_reference_web_search_recording_replays_end_to_end(replay_server: RunningServer) -> None:
    headers = {"X-Riposte-Replay-Scope": SCOPE}
    response = strict_create(replay_server, headers=headers, model="openai/gpt-4o", input=LLAMA_QUESTION,
                             tools=[{"type": "web_search"}], include=["web_search_call.action.sources"])

    call, message = response.output
    assert call.type == "web_search_call" and call.status == "completed"
    assert call.action.type == "search" and call.action.query == "Llama 4 Maverick model experts"
    assert [s.url for s in call.action.sources or []][:2] == [
        "https://console.groq.com/docs/model/meta-llama/llama-4-maverick-17b-128e-instruct",
        "https://huggingface.co/meta-llama/Llama-4-Maverick-17B-128E"]
    assert message.type == "message" and message.status == "completed"
    assert "128" in response.output_text
    [echoed] = response.tools
    assert echoed.type == "web_search" and echoed.search_context_size == "medium"
    assert echoed.user_location is not None and echoed.user_location.country == "US"
    # The stored chain replays too (the recording system's own second call is in the history).
    assert sdk(replay_server).responses.retrieve(response.id).output_text == response.output_text


def test_reference_recording_streams_web_search_events(replay_server: RunningServer) -> None:
    events = stream_events(replay_server, headers={"X-Riposte-Replay-Scope": SCOPE}, model="openai/gpt-4o",
                           input=LLAMA_QUESTION, tools=[{"type": "web_search_preview"}])

    assert_valid_stream(events)
    phases = [e.type for e in events if e.type.startswith("response.web_search_call.")]
    assert phases == ["response.web_search_call.in_progress", "response.web_search_call.searching",
                      "response.web_search_call.completed"]
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "web_search_call" and added.item.action.query == "Llama 4 Maverick model experts"
    final = events[-1].response
    assert final.output[0].action.sources is None  # not asked for with include
    assert final.tools[0].type == "web_search_preview" and final.tools[0].search_context_size == "medium"


# ------------------------------------------------------------------ offline corpus


def test_offline_search_cites_the_corpus_and_opens_no_connection(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch, corpus: Path
) -> None:
    server = web_server(make_server, upstream, provider="tavily",
                        tavily={"base_url": search_api.base_url, "api_key": "tvly-key"},
                        offline={"directory": str(corpus)})
    answer = f"Saturn's rings are ice and rock, per [NASA]({SATURN_URL})."
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "saturn rings"}')]),
                     text_reply(answer, pieces=9))

    events = stream_events(server, model="fake/m", input="What are Saturn's rings made of?",
                           tools=[{"type": "web_search", "external_web_access": False}],
                           include=["web_search_call.action.sources"])

    assert search_api.connections == 0 and search_api.requests == []
    assert_valid_stream(events)
    final = events[-1].response
    call, message = final.output
    assert call.status == "completed" and call.action.query == "saturn rings"
    assert [s.url for s in call.action.sources or []] == [SATURN_URL]
    text = message.content[0]
    assert text.text == answer
    start = answer.index("[NASA]")
    citation = {"type": "url_citation", "url": SATURN_URL, "title": "Saturn - NASA Science", "start_index": start,
                "end_index": len(answer) - 1}
    assert [a.model_dump() for a in text.annotations] == [citation]
    [added] = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added.annotation.model_dump() == citation and added.item_id == message.id
    # The model read the reference recordings' result shape.
    result = json.loads(tool_message(upstream.requests[1]))
    assert result["query"] == "saturn rings"
    assert result["top_k"][0]["url"] == SATURN_URL and "ice and rock" in result["top_k"][0]["content"]
    assert set(result["top_k"][0]) == {"url", "title", "content", "score", "raw_content"}
    assert final.tools[0].external_web_access is False


def test_offline_is_the_default_provider_when_selected(
    make_server: ServerFactory, upstream: ScriptedUpstream, corpus: Path
) -> None:
    server = web_server(make_server, upstream, provider="offline", offline={"directory": str(corpus)})
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "moons of mars"}')]),
                     text_reply("Mars has two moons (https://en.wikipedia.org/wiki/Mars)."))

    response = strict_create(server, model="fake/m", input="Moons of Mars?", tools=[{"type": "web_search"}])

    assert json.loads(tool_message(upstream.requests[1]))["top_k"][0]["url"] == MARS_DOC["url"]
    annotation = response.output[1].content[0].annotations[0]
    assert (annotation.url, annotation.title) == (MARS_DOC["url"], MARS_DOC["title"])
    assert response.output_text[annotation.start_index:annotation.end_index] == MARS_DOC["url"]


# ------------------------------------------------------------------ live providers (a fake search API)


def test_tavily_gets_the_key_the_domains_and_the_context_size(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch
) -> None:
    server = web_server(make_server, upstream, provider="tavily",
                        tavily={"base_url": search_api.base_url, "api_key": "tvly-key"})
    search_api.results = [
        {"url": "https://docs.python.org/3/whatsnew/3.13.html", "title": "What's New In Python 3.13",
         "content": "Python 3.13 adds a free-threaded build.", "score": 0.9},
        {"url": "https://blog.example.com/py313", "title": "Elsewhere", "content": "Off the allowed domains."},
    ]
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "python 3.13 news"}')]),
                     text_reply("A free-threaded build: https://docs.python.org/3/whatsnew/3.13.html"))

    response = strict_create(server, model="fake/m", input="What is new in Python 3.13?",
                             tools=[{"type": "web_search", "search_context_size": "high",
                                     "filters": {"allowed_domains": ["https://Docs.Python.org"]}}],
                             include=["web_search_call.action.sources"])

    [request] = search_api.requests
    assert request["path"] == "/search" and request["headers"]["authorization"] == "Bearer tvly-key"
    assert request["arguments"] == {"query": "python 3.13 news", "max_results": 10, "search_depth": "advanced",
                                    "include_domains": ["docs.python.org"]}
    assert [s.url for s in response.output[0].action.sources or []] == ["https://docs.python.org/3/whatsnew/3.13.html"]
    assert [a.title for a in response.output[1].content[0].annotations] == ["What's New In Python 3.13"]
    echoed = response.tools[0]
    assert echoed.filters is not None and echoed.filters.allowed_domains == ["docs.python.org"]
    assert echoed.search_context_size == "high"


def test_brave_gets_the_key_and_the_country(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch
) -> None:
    server = web_server(make_server, upstream, provider="brave",
                        brave={"base_url": search_api.base_url, "api_key": "brave-key"})
    search_api.results = [{"url": "https://www.bbc.co.uk/weather", "title": "BBC <strong>Weather</strong>",
                           "content": "Rain in <strong>London</strong>."}]
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "london weather"}')]),
                     text_reply("Rain."))

    strict_create(server, model="fake/m", input="Weather in London?",
                  tools=[{"type": "web_search", "user_location": {"type": "approximate", "country": "gb"}}])

    [request] = search_api.requests
    assert request["path"] == "/web/search" and request["headers"]["x-subscription-token"] == "brave-key"
    assert request["arguments"] == {"q": "london weather", "count": "5", "country": "gb"}
    top = json.loads(tool_message(upstream.requests[1]))["top_k"][0]
    assert (top["title"], top["content"]) == ("BBC Weather", "Rain in London.")


def test_a_provider_that_fails_gives_a_failed_call_and_the_turn_goes_on(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch
) -> None:
    server = web_server(make_server, upstream, provider="tavily",
                        tavily={"base_url": search_api.base_url, "api_key": "bad"})
    search_api.status = 401
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "x"}')]), text_reply("I could not search."))

    events = stream_events(server, model="fake/m", input="Search x", tools=[{"type": "web_search"}])

    assert_valid_stream(events)
    final = events[-1].response
    assert final.status == "completed" and final.output[0].status == "failed"
    assert "refused the API key" in tool_message(upstream.requests[1])
    phases = [e.type for e in events if e.type.startswith("response.web_search_call.")]
    assert phases == ["response.web_search_call.in_progress", "response.web_search_call.searching"]


def test_a_provider_url_the_outbound_policy_denies_is_never_contacted(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch
) -> None:
    server = web_server(make_server, upstream, outbound={}, provider="tavily",
                        tavily={"base_url": search_api.base_url, "api_key": "k"})
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "x"}')]), text_reply("No search."))

    response = strict_create(server, model="fake/m", input="Search x", tools=[{"type": "web_search"}])

    assert response.output[0].status == "failed" and search_api.connections == 0
    assert "loopback" in tool_message(upstream.requests[1])


@pytest.mark.parametrize("tool", [
    {"type": "web_search"},
    # What Codex sends in its cached and live modes.
    {"type": "web_search", "external_web_access": False},
    {"type": "web_search", "external_web_access": True, "search_content_types": ["text", "image"]},
    {"type": "web_search", "external_web_access": False, "indexed_web_access": True},
])
def test_codex_shaped_tool_without_a_provider_fails_the_call_not_the_request(
    make_server: ServerFactory, upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch, tool: dict[str, Any]
) -> None:
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    server = web_server(make_server, upstream)
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "rust 1.80"}')]),
                     text_reply("I cannot search the web here."))

    response = strict_create(server, model="fake/m", input="What is new in Rust?", tools=[tool])

    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].status == "failed"
    assert "no search provider is configured" in tool_message(upstream.requests[1])
    assert response.output_text == "I cannot search the web here."


# ------------------------------------------------------------------ record, then replay


def test_provider_calls_record_in_the_reference_format_and_replay_offline(
    make_server: ServerFactory, upstream: ScriptedUpstream, search_api: FakeSearch, tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    tavily = {"base_url": search_api.base_url, "api_key": "k"}
    search_api.results = [{"url": "https://example.org/a", "title": "A", "content": "Alpha."}]
    recorder = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                           inference_mode=InferenceMode.RECORD, recordings_dir=recordings,
                           web_search={"provider": "tavily", "tavily": tavily}, outbound=LOOPBACK_ALLOWED)
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "alpha"}')]), text_reply("Alpha."))
    first = strict_create(recorder, headers={"X-Riposte-Replay-Scope": "t1"}, model="fake/m", input="alpha?",
                          tools=[{"type": "web_search"}])
    [tool_file] = [p for p in recordings.glob("*.json") if "tool_name" in json.loads(p.read_text())["request"]]
    recorded = json.loads(tool_file.read_text())
    assert recorded["test_id"] == "t1"
    assert recorded["request"] == {"test_id": "t1", "provider": "tavily", "tool_name": "web_search",
                                   "kwargs": {"query": "alpha"}}
    assert json.loads(recorded["response"]["body"]["__data__"]["content"])["top_k"][0]["url"] == "https://example.org/a"

    connections = search_api.connections
    replayer = make_server(providers=[ProviderConfig(name="fake", base_url="http://127.0.0.1:9/v1")],
                           inference_mode=InferenceMode.REPLAY, recordings_dir=recordings,
                           web_search={"provider": "tavily", "tavily": tavily}, outbound=LOOPBACK_ALLOWED)
    second = strict_create(replayer, headers={"X-Riposte-Replay-Scope": "t1"}, model="fake/m", input="alpha?",
                           tools=[{"type": "web_search"}])
    assert second.output_text == first.output_text == "Alpha."
    assert second.output[0].status == "completed" and search_api.connections == connections


# ------------------------------------------------------------------ history and validation


def test_web_search_call_items_are_accepted_as_input_history(
    make_server: ServerFactory, upstream: ScriptedUpstream, corpus: Path
) -> None:
    server = web_server(make_server, upstream, offline={"directory": str(corpus)})
    upstream.enqueue(text_reply("Yes."))
    history = [
        {"role": "user", "content": "Saturn's rings?"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "saturn rings"}},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": f"Ice [NASA]({SATURN_URL}).", "annotations": [
                {"type": "url_citation", "url": SATURN_URL, "title": "NASA", "start_index": 4, "end_index": 36}]}]},
        {"role": "user", "content": "Sure?"},
    ]

    response = strict_create(server, model="fake/m", input=history, tools=[{"type": "web_search"}])

    assert response.output_text == "Yes."
    assert [m["role"] for m in upstream.requests[0]["messages"]] == ["user", "assistant", "user"]
    listed = sdk(server).responses.input_items.list(response.id, order="asc")
    assert [item.type for item in listed.data] == ["message", "web_search_call", "message", "message"]


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "web_search", "search_context_size": "huge"}, "tools[0].search_context_size"),
    ({"type": "web_search", "search_content_types": ["image"]}, "tools[0].search_content_types"),
    ({"type": "web_search", "indexed_web_access": "yes"}, "tools[0].indexed_web_access"),
    ({"type": "web_search", "filters": {"allowed_domains": "example.com"}}, "tools[0].filters.allowed_domains"),
    ({"type": "web_search", "user_location": {"country": "Germany"}}, "tools[0].user_location.country"),
    ({"type": "web_search_preview", "filters": {}}, "tools[0].filters"),
    ({"type": "web_search", "external_web_access": "no"}, "tools[0].external_web_access"),
])
def test_malformed_web_search_tools_get_a_400_naming_the_field(
    make_server: ServerFactory, upstream: ScriptedUpstream, tool: dict[str, Any], param: str
) -> None:
    server = web_server(make_server, upstream)
    reply = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "x", "tools": [tool]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


# ------------------------------------------------------------------ the Agents SDK, unmodified


async def test_agents_sdk_web_search_tool_runs_on_riposte(
    make_server: ServerFactory, upstream: ScriptedUpstream, corpus: Path
) -> None:
    server = web_server(make_server, upstream, provider="offline", offline={"directory": str(corpus)})
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "saturn rings"}')]),
                     text_reply(f"Ice and rock ([NASA]({SATURN_URL}))."))
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=60) as client:
        agent = Agent(name="searcher", instructions="Search, then answer.",
                      tools=[WebSearchTool(search_context_size="low", user_location={"type": "approximate",
                                                                                     "city": "Paris"})],
                      model=OpenAIResponsesModel(model="fake/m", openai_client=client))
        result = await Runner.run(agent, "What are Saturn's rings made of?",
                                  run_config=RunConfig(tracing_disabled=True))

    assert result.final_output == f"Ice and rock ([NASA]({SATURN_URL}))."
    [call] = [item.raw_item for item in result.new_items if isinstance(item, ToolCallItem)]
    assert call.type == "web_search_call" and call.status == "completed"
    assert upstream.requests[0]["tools"][0]["function"]["name"] == "web_search"
    message = result.new_items[-1].raw_item
    assert message.content[0].annotations[0].url == SATURN_URL  # type: ignore[union-attr]


@pytest.mark.parametrize("choice", [{"type": "web_search"}, {"type": "web_search_preview_2025_03_11"}, "required"])
def test_a_forced_web_search_applies_to_the_first_model_call_only(
    make_server: ServerFactory, upstream: ScriptedUpstream, corpus: Path, choice: Any
) -> None:
    server = web_server(make_server, upstream, provider="offline", offline={"directory": str(corpus)})
    upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "mars"}')]), text_reply("Two moons."))

    # Leniently parsed: the SDK's ToolChoiceTypes has no "web_search" for the echoed tool_choice.
    response = sdk(server).responses.create(model="fake/m", input="Moons of Mars?", tool_choice=choice,
                                            tools=[{"type": "web_search_preview"}])

    assert response.output_text == "Two moons."
    forced = upstream.requests[0]["tool_choice"]
    assert forced in ("required", {"type": "function", "function": {"name": "web_search"}})
    assert upstream.requests[1].get("tool_choice") in (None, "auto")
