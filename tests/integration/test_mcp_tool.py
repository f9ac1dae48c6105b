"""Remote MCP tools end to end: a real MCP server (the `mcp` SDK) on loopback, a scripted model,
Riposte in between, driven over HTTP and checked with the official SDK types and the grammar."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from riposte.tools.mcp_tool import DECLINED_MESSAGE
from tests.fakes.mcp_server import McpTestServer
from tests.fakes.scripted_upstream import Reply, ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.mcp_fixtures import TOKEN, mcp_tool
from tests.integration.sdk import stream_events, strict_create

MODEL = "fake/m"
QUESTION = "What is the boiling point of myawesomeliquid in Celsius?"
BOILING_ARGS = '{"liquid_name":"myawesomeliquid","celsius":true}'
# A client function tool, offered next to the MCP server's.
LOOKUP = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}


def boiling_call(call_id: str = "call_1") -> Any:
    return tool_calls_reply([(call_id, "get_boiling_point", BOILING_ARGS)])


def types_of(events: list[Any]) -> list[str]:
    return [event.type for event in events]


def call_items(events: list[Any]) -> list[tuple[str, str]]:
    """Each call item's added and done events, in order, as (added or done, item type)."""
    return [(event.type.rsplit(".", 1)[-1], event.item.type) for event in events
            if event.type.startswith("response.output_item.") and event.item.type != "mcp_list_tools"]


def test_an_mcp_call_runs_on_the_server_with_its_events_header_and_token(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(boiling_call(), text_reply("It boils at -100 degrees."))
    before = len(toolbox_mcp.seen)
    tool = mcp_tool(toolbox_mcp, headers={"X-Tenant": "acme"}, authorization="secret-token",
                    allowed_tools=["get_boiling_point", "greet_everyone"])

    events = stream_events(mcp_riposte, model=MODEL, input=QUESTION, tools=[tool])

    assert_valid_stream(events)
    mcp_events = [t for t in types_of(events) if "mcp" in t or t.startswith("response.output_item")]
    assert mcp_events[:8] == [
        "response.output_item.added", "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed",
        "response.output_item.done", "response.output_item.added", "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.delta", "response.mcp_call_arguments.delta",
    ]
    assert [t for t in mcp_events if t.startswith("response.mcp_call.")] == [
        "response.mcp_call.in_progress", "response.mcp_call.completed"]
    listing, call, message = events[-1].response.output
    assert listing.type == "mcp_list_tools" and listing.server_label == "localmcp"
    assert {t.name for t in listing.tools} == {"get_boiling_point", "greet_everyone"}
    assert (call.type, call.name, call.arguments, call.output, call.error, call.status) == (
        "mcp_call", "get_boiling_point", BOILING_ARGS, "-100", None, "completed")
    assert message.content[0].text == "It boils at -100 degrees."
    # What the model saw: the two allowed tools as functions, then the call's result.
    assert [t["function"]["name"] for t in mcp_model.requests[0]["tools"]] == ["greet_everyone", "get_boiling_point"]
    assert mcp_model.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_1",
                                                 "content": [{"type": "text", "text": "-100"}]}
    # Header and bearer token reached the server; one session served listing and call, then closed.
    seen = toolbox_mcp.seen[before:]
    assert all(r.headers.get("x-tenant") == "acme" for r in seen)
    assert all(r.headers.get("authorization") == "Bearer secret-token" for r in seen)
    assert [r.rpc_method for r in seen if r.rpc_method in ("initialize", "tools/list", "tools/call")] == [
        "initialize", "tools/list", "tools/call"]
    assert seen[-1].method == "DELETE"


def test_two_calls_in_one_model_turn_run_one_item_after_another(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(tool_calls_reply([("call_1", "get_boiling_point", BOILING_ARGS),
                                        ("call_2", "get_boiling_point", BOILING_ARGS)]),
                      text_reply("Both boil at -100 degrees."))
    events = stream_events(mcp_riposte, model=MODEL, input=QUESTION, tools=[mcp_tool(toolbox_mcp)])

    assert_valid_stream(events)
    calls = [(event.type, event.item.id) for event in events
             if event.type.startswith("response.output_item.") and event.item.type == "mcp_call"]
    first, second = calls[0][1], calls[2][1]
    assert calls == [("response.output_item.added", first), ("response.output_item.done", first),
                     ("response.output_item.added", second), ("response.output_item.done", second)]
    outputs = [item for item in events[-1].response.output if item.type == "mcp_call"]
    assert [(item.arguments, item.output, item.status) for item in outputs] == [(BOILING_ARGS, "-100", "completed")] * 2


def test_a_client_call_after_an_mcp_call_in_one_model_turn_is_added_once_the_mcp_call_has_run(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    # The mcp_call item stays open until the server has run the call; the client's call named after
    # it is added then, not beside it, and the next turn hands both results to the model.
    mcp_model.enqueue(tool_calls_reply([("call_1", "get_boiling_point", BOILING_ARGS), ("call_2", "lookup", "{}")]),
                      text_reply("Done."))
    events = stream_events(mcp_riposte, model=MODEL, input=QUESTION, tools=[mcp_tool(toolbox_mcp), LOOKUP])

    assert_valid_stream(events)
    assert call_items(events) == [("added", "mcp_call"), ("done", "mcp_call"), ("added", "function_call"),
                                 ("done", "function_call")]
    response = events[-1].response
    call = response.output[-1]
    assert (call.type, call.call_id, call.name, call.status) == ("function_call", "call_2", "lookup", "completed")
    assert response.status == "completed" and len(mcp_model.requests) == 1

    strict_create(mcp_riposte, model=MODEL, previous_response_id=response.id, tools=[mcp_tool(toolbox_mcp), LOOKUP],
                  input=[{"type": "function_call_output", "call_id": "call_2", "output": "found"}])
    messages = mcp_model.requests[1]["messages"]
    assert [c["id"] for c in messages[-3]["tool_calls"]] == ["call_1", "call_2"]
    assert [(m["role"], m["tool_call_id"]) for m in messages[-2:]] == [("tool", "call_1"), ("tool", "call_2")]


def test_an_mcp_call_named_while_a_client_calls_arguments_are_unfinished_is_added_after_that_call(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    # A backend that interleaves parallel calls names the MCP call before the client call's arguments
    # are whole: the function_call item is done first, then the mcp_call is added and run, in the
    # model's order, never one beside the other.
    interleaved = Reply(deltas=(
        {"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": '}}]},
        {"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                         "function": {"name": "get_boiling_point", "arguments": BOILING_ARGS}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]},
    ), finish_reason="tool_calls")
    mcp_model.enqueue(interleaved)
    events = stream_events(mcp_riposte, model=MODEL, input=QUESTION, tools=[mcp_tool(toolbox_mcp), LOOKUP])

    assert_valid_stream(events)
    assert call_items(events) == [("added", "function_call"), ("done", "function_call"), ("added", "mcp_call"),
                                 ("done", "mcp_call")]
    response = events[-1].response
    call, mcp_call = response.output[-2:]
    assert (call.call_id, call.arguments, call.status) == ("call_1", '{"q": "x"}', "completed")
    assert (mcp_call.arguments, mcp_call.output, mcp_call.status) == (BOILING_ARGS, "-100", "completed")
    assert response.status == "completed" and len(mcp_model.requests) == 1


def test_the_non_streaming_response_parses_and_is_stored(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(boiling_call(), text_reply("-100 degrees."))
    response = strict_create(mcp_riposte, model=MODEL, input=QUESTION, tools=[mcp_tool(boiling_mcp)])
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    stored = httpx.get(f"{mcp_riposte.base_url}/responses/{response.id}").json()
    assert [item["id"] for item in stored["output"]] == [item.id for item in response.output]
    assert response.tools[0].type == "mcp" and response.tools[0].require_approval == "never"


def test_allowed_tools_filters_by_name_and_by_read_only(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(text_reply("ok"), text_reply("ok"))
    by_name = strict_create(mcp_riposte, model=MODEL, input="hi",
                            tools=[mcp_tool(toolbox_mcp, allowed_tools=["explode"])])
    read_only = strict_create(mcp_riposte, model=MODEL, input="hi",
                              tools=[mcp_tool(toolbox_mcp, allowed_tools={"read_only": True})])
    assert [t.name for t in by_name.output[0].tools] == ["explode"]
    assert [t["function"]["name"] for t in mcp_model.requests[0]["tools"]] == ["explode"]
    assert [t.name for t in read_only.output[0].tools] == ["read_thermometer"]
    assert [t["function"]["name"] for t in mcp_model.requests[1]["tools"]] == ["read_thermometer"]


def test_approval_granted_runs_the_call_in_the_next_turn(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    tools = [mcp_tool(boiling_mcp, require_approval="always")]
    mcp_model.enqueue(boiling_call("call_ask"))
    events = stream_events(mcp_riposte, model=MODEL, input=QUESTION, tools=tools)
    assert_valid_stream(events)
    first = events[-1].response
    assert first.status == "completed"
    request = first.output[1]
    assert (request.type, request.name, request.arguments) == ("mcp_approval_request", "get_boiling_point",
                                                                BOILING_ARGS)
    assert "response.mcp_call_arguments.delta" not in types_of(events)

    mcp_model.enqueue(text_reply("It boils at -100."))
    events = stream_events(mcp_riposte, model=MODEL, previous_response_id=first.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    assert_valid_stream(events)
    output = events[-1].response.output
    assert [item.type for item in output] == ["mcp_list_tools", "mcp_call", "message"]
    assert (output[1].output, output[1].approval_request_id) == ("-100", request.id)
    # The model's own call, then its result: exactly what a model that called the tool expects.
    assert mcp_model.requests[1]["messages"][-2:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_ask", "type": "function", "function": {"name": "get_boiling_point",
                                                               "arguments": BOILING_ARGS}}]},
        {"role": "tool", "tool_call_id": "call_ask", "content": [{"type": "text", "text": "-100"}]}]
    assert boiling_mcp.rpc_calls("tools/list") >= 1


def test_approval_denied_tells_the_model_and_runs_nothing(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    tools = [mcp_tool(boiling_mcp, require_approval={"always": {"tool_names": ["get_boiling_point"]}})]
    mcp_model.enqueue(boiling_call("call_no"), text_reply("Then I cannot tell."))
    first = strict_create(mcp_riposte, model=MODEL, input=QUESTION, tools=tools)
    calls_before = boiling_mcp.rpc_calls("tools/call")
    second = strict_create(mcp_riposte, model=MODEL, previous_response_id=first.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": first.output[1].id, "approve": False}])
    assert [item.type for item in second.output] == ["mcp_list_tools", "message"]
    assert boiling_mcp.rpc_calls("tools/call") == calls_before
    assert mcp_model.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_no",
                                                 "content": DECLINED_MESSAGE}


def test_approval_response_sent_back_as_input_with_the_earlier_items(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    tools = [mcp_tool(boiling_mcp, require_approval="always")]
    mcp_model.enqueue(boiling_call("call_x"), text_reply("-100."))
    first = strict_create(mcp_riposte, model=MODEL, input=QUESTION, tools=tools, store=False)
    earlier = [item.model_dump(exclude_none=True) for item in first.output]
    second = strict_create(mcp_riposte, model=MODEL, tools=tools, input=[
        {"role": "user", "content": QUESTION}, *earlier,
        {"type": "mcp_approval_response", "approval_request_id": first.output[1].id, "approve": True}])
    assert [item.type for item in second.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert second.output[1].output == "-100"


def test_an_unknown_approval_request_id_is_a_400(mcp_riposte: RunningServer, boiling_mcp: McpTestServer) -> None:
    reply = httpx.post(f"{mcp_riposte.base_url}/responses", json={
        "model": MODEL, "tools": [mcp_tool(boiling_mcp)],
        "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_nope", "approve": True}]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[0].approval_request_id"


def test_a_tool_that_raises_is_a_failed_call_and_the_model_goes_on(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(tool_calls_reply([("call_e", "explode", '{"reason":"test"}')]), text_reply("It failed."))
    events = stream_events(mcp_riposte, model=MODEL, input="Explode.", tools=[mcp_tool(toolbox_mcp)])
    assert_valid_stream(events)
    assert "response.mcp_call.failed" in types_of(events)
    call = events[-1].response.output[1]
    assert call.status == "failed" and call.output is None
    assert call.error is not None and call.error.type == "mcp_tool_execution_error"
    assert events[-1].response.status == "completed"
    assert "explode" in json.dumps(mcp_model.requests[1]["messages"][-1]["content"])


def test_a_tool_that_hangs_times_out_as_a_failed_call(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(tool_calls_reply([("call_t", "take_forever", "{}")]), text_reply("Too slow."))
    events = stream_events(mcp_riposte, model=MODEL, input="Wait.", tools=[mcp_tool(toolbox_mcp)])
    assert_valid_stream(events)
    call = events[-1].response.output[1]
    assert call.status == "failed" and call.error is not None
    assert (call.error.type, call.error.code) == ("http_error", 504)


def test_a_server_that_is_down_is_a_failed_listing_and_the_turn_goes_on(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream
) -> None:
    mcp_model.enqueue(text_reply("No tools today."))
    down = {"type": "mcp", "server_label": "down", "server_url": "http://127.0.0.1:9/mcp"}
    events = stream_events(mcp_riposte, model=MODEL, input="hi", tools=[down])
    assert_valid_stream(events)
    assert "response.mcp_list_tools.failed" in types_of(events)
    listing = events[-1].response.output[0]
    assert listing.tools == [] and listing.error is not None and "down" in listing.error
    assert events[-1].response.status == "completed"
    assert "tools" not in mcp_model.requests[0]


def test_a_401_from_the_server_is_a_failed_listing_and_the_token_fixes_it(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, guarded_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(text_reply("ok"), text_reply("ok"))
    refused = strict_create(mcp_riposte, model=MODEL, input="hi", tools=[mcp_tool(guarded_mcp)])
    assert refused.output[0].error is not None and "401" in refused.output[0].error
    allowed = strict_create(mcp_riposte, model=MODEL, input="hi", tools=[mcp_tool(guarded_mcp, authorization=TOKEN)])
    assert allowed.output[0].error is None and len(allowed.output[0].tools) == 2


def test_a_chained_turn_reuses_the_listing(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    tools = [mcp_tool(boiling_mcp)]
    mcp_model.enqueue(text_reply("one"), text_reply("two"))
    first = strict_create(mcp_riposte, model=MODEL, input="hi", tools=tools)
    sessions = boiling_mcp.rpc_calls("initialize")
    listings = boiling_mcp.rpc_calls("tools/list")
    second = strict_create(mcp_riposte, model=MODEL, input="again", tools=tools, previous_response_id=first.id)
    assert (boiling_mcp.rpc_calls("tools/list"), boiling_mcp.rpc_calls("initialize")) == (listings, sessions)
    assert second.output[0].type == "mcp_list_tools" and second.output[0].id != first.output[0].id
    assert [t.name for t in second.output[0].tools] == [t.name for t in first.output[0].tools]
    assert mcp_model.requests[1]["tools"] == mcp_model.requests[0]["tools"]


@pytest.mark.parametrize("tools", [
    "two servers",
    "function and server",
])
def test_function_names_colliding_across_tools_are_a_400(
    mcp_riposte: RunningServer, boiling_mcp: McpTestServer, tools: str
) -> None:
    declared = [mcp_tool(boiling_mcp, "a"), mcp_tool(boiling_mcp, "b")] if tools == "two servers" else [
        {"type": "function", "name": "greet_everyone"}, mcp_tool(boiling_mcp)]
    reply = httpx.post(f"{mcp_riposte.base_url}/responses", json={"model": MODEL, "input": "hi", "tools": declared})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "duplicate_tool_name"
    assert reply.json()["error"]["param"] == "tools[1]"


@pytest.mark.parametrize(("field", "value", "param"), [
    ("server_url", "http://169.254.169.254/latest/meta-data", "tools[0].server_url"),
    ("server_url", "http://metadata.google.internal/mcp", "tools[0].server_url"),
    ("server_url", "file:///etc/passwd", "tools[0].server_url"),
    ("connector_id", "connector_gmail", "tools[0].connector_id"),
    ("require_approval", "sometimes", "tools[0].require_approval"),
    ("allowed_tools", {"names": ["x"]}, "tools[0].allowed_tools"),
])
def test_bad_mcp_tools_are_a_400_naming_the_field(
    mcp_riposte: RunningServer, boiling_mcp: McpTestServer, field: str, value: object, param: str
) -> None:
    tool = {**mcp_tool(boiling_mcp), field: value}
    reply = httpx.post(f"{mcp_riposte.base_url}/responses", json={"model": MODEL, "input": "hi", "tools": [tool]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_approval_inside_a_conversation(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    conversation = httpx.post(f"{mcp_riposte.base_url}/conversations", json={}).json()["id"]
    tools = [mcp_tool(boiling_mcp, require_approval="always", allowed_tools=["get_boiling_point"])]
    mcp_model.enqueue(boiling_call("call_c"), text_reply("-100 it is."))
    first = strict_create(mcp_riposte, model=MODEL, input=QUESTION, tools=tools, conversation=conversation)
    second = strict_create(mcp_riposte, model=MODEL, tools=tools, conversation=conversation, input=[
        {"type": "mcp_approval_response", "approval_request_id": first.output[1].id, "approve": True}])
    assert [item.type for item in second.output] == ["mcp_list_tools", "mcp_call", "message"]
    sent = mcp_model.requests[1]["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "get_boiling_point"
    assert sent[-1] == {"role": "tool", "tool_call_id": sent[-2]["tool_calls"][0]["id"],
                        "content": [{"type": "text", "text": "-100"}]}
    items = httpx.get(f"{mcp_riposte.base_url}/conversations/{conversation}/items?order=asc").json()["data"]
    assert [item["type"] for item in items] == ["message", "mcp_list_tools", "mcp_approval_request",
                                                "mcp_approval_response", "mcp_list_tools", "mcp_call", "message"]


def test_a_conversation_turn_naming_its_tools_reuses_the_listing(
    mcp_riposte: RunningServer, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    conversation = httpx.post(f"{mcp_riposte.base_url}/conversations", json={}).json()["id"]
    tools = [mcp_tool(boiling_mcp, allowed_tools=["greet_everyone"])]
    mcp_model.enqueue(text_reply("one"), text_reply("two"))
    strict_create(mcp_riposte, model=MODEL, input="hi", tools=tools, conversation=conversation)
    listings = boiling_mcp.rpc_calls("tools/list")
    second = strict_create(mcp_riposte, model=MODEL, input="again", tools=tools, conversation=conversation)
    assert boiling_mcp.rpc_calls("tools/list") == listings
    assert [t.name for t in second.output[0].tools] == ["greet_everyone"]
