"""tool_choice with server-side tools, over HTTP: what reaches the model on each call of a turn.
A forced choice applies to the first model call only, so a forced turn still ends in an answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.mcp_server import McpTestServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.mcp_fixtures import mcp_tool
from tests.integration.sdk import stream_events, strict_create

MODEL = "fake/m"
BOILING = ("call_1", "get_boiling_point", '{"liquid_name":"myawesomeliquid"}')


def functions(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools") or []]


@pytest.mark.parametrize(("tool_choice", "forced"), [
    ("required", "required"),
    ({"type": "mcp", "server_label": "localmcp", "name": "get_boiling_point"},
     {"type": "function", "function": {"name": "get_boiling_point"}}),
])
def test_a_forced_choice_applies_to_the_first_call_only(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer, tool_choice: Any,
    forced: Any
) -> None:
    mcp_model.enqueue(tool_calls_reply([BOILING]), text_reply("-100."))
    events = stream_events(mcp_riposte, model=MODEL, input="Boiling point?", tools=[mcp_tool(boiling_mcp)],
                           tool_choice=tool_choice)
    assert_valid_stream(events)
    assert events[-1].response.status == "completed"
    assert events[-1].response.output_text == "-100."
    first, second = mcp_model.requests
    assert first["tool_choice"] == forced
    assert "tool_choice" not in second


def test_allowed_tools_restricts_every_call_and_forces_the_first(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(tool_calls_reply([BOILING]), text_reply("-100."))
    response = strict_create(mcp_riposte, model=MODEL, input="Boiling point?", tools=[
        mcp_tool(boiling_mcp), {"type": "function", "name": "lookup"}], tool_choice={
        "type": "allowed_tools", "mode": "required",
        "tools": [{"type": "mcp", "server_label": "localmcp", "name": "get_boiling_point"}]})
    assert response.output_text == "-100."
    first, second = mcp_model.requests
    assert functions(first) == functions(second) == ["get_boiling_point"]
    assert (first["tool_choice"], "tool_choice" in second) == ("required", False)


def test_a_forced_file_search_does_not_loop(mcp_riposte: RunningServer, mcp_model: ScriptedUpstream) -> None:
    search = ("call_fs", "knowledge_search", '{"query":"boiling"}')
    mcp_model.enqueue(tool_calls_reply([search]), text_reply("Nothing found."))
    store = httpx.post(f"{mcp_riposte.base_url}/vector_stores", json={
        "name": "empty", "embedding_model": "fake/emb", "embedding_dimension": 8}).json()["id"]
    response = strict_create(mcp_riposte, model=MODEL, input="Search.", tool_choice={"type": "file_search"},
                             tools=[{"type": "file_search", "vector_store_ids": [store]}])
    assert response.status == "completed" and response.output_text == "Nothing found."
    assert [item.type for item in response.output] == ["file_search_call", "message"]
    first, second = mcp_model.requests
    assert first["tool_choice"] == {"type": "function", "function": {"name": "knowledge_search"}}
    assert "tool_choice" not in second


def test_max_tool_calls_stops_running_tools(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    again = ("call_2", "get_boiling_point", '{"liquid_name":"water"}')
    mcp_model.enqueue(tool_calls_reply([BOILING]), tool_calls_reply([again]), text_reply("Done."))
    calls = boiling_mcp.rpc_calls("tools/call")
    events = stream_events(mcp_riposte, model=MODEL, input="Two lookups.", tools=[mcp_tool(boiling_mcp)],
                           max_tool_calls=1)
    assert_valid_stream(events)
    assert boiling_mcp.rpc_calls("tools/call") == calls + 1
    output = events[-1].response.output
    assert [(item.type, item.status) for item in output if item.type == "mcp_call"] == [
        ("mcp_call", "completed"), ("mcp_call", "incomplete")]
    assert mcp_model.requests[2]["tool_choice"] == "none"
    assert "at most 1 tool calls" in mcp_model.requests[2]["messages"][-1]["content"]


@pytest.mark.parametrize(("tool_choice", "param"), [
    ({"type": "mcp", "server_label": "nope"}, "tool_choice.server_label"),
    ({"type": "web_search_preview"}, "tool_choice.type"),
    ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "nope"}]},
     "tool_choice.tools[0].name"),
])
def test_a_choice_of_a_tool_not_given_is_a_400(
    mcp_riposte: RunningServer, boiling_mcp: McpTestServer, tool_choice: Any, param: str
) -> None:
    reply = httpx.post(f"{mcp_riposte.base_url}/responses", json={
        "model": MODEL, "input": "hi", "tools": [mcp_tool(boiling_mcp)], "tool_choice": tool_choice})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


@pytest.mark.parametrize(("tool", "choice"), [
    ("web_search", {"type": "web_search"}),
    ("web_search_preview", {"type": "web_search_preview"}),
    ("web_search_preview_2025_03_11", {"type": "web_search_preview_2025_03_11"}),
])
def test_a_forced_web_search_does_not_loop(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, tool: str, choice: dict[str, str]
) -> None:
    # No search provider is set up on this server: the call fails, and the model still answers.
    mcp_model.enqueue(tool_calls_reply([("call_ws", "web_search", '{"query":"boiling points"}')]),
                      text_reply("I could not search."))
    events = stream_events(mcp_riposte, model=MODEL, input="Search.", tools=[{"type": tool}], tool_choice=choice)
    assert_valid_stream(events)
    assert events[-1].response.output_text == "I could not search."
    first, second = mcp_model.requests
    assert first["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert "tool_choice" not in second
