"""The server-side tool seam in the state machine: items opened while the model streams a call,
their argument events, and items closed on every path."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.engine.client_tools import ClientTool
from riposte.engine.request import CreateResponseRequest
from riposte.engine.response_object import new_response_object
from riposte.engine.stream_state import ArgumentStream, ResponseStream, ToolCall
from riposte.testing.grammar import assert_valid_stream, stream_grammar_errors

USAGE = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
MCP_CALL = ArgumentStream("mcp", {"type": "mcp_call", "status": "in_progress", "name": "get_boiling_point",
                                  "server_label": "localmcp", "output": None, "error": None})


def mcp_stream() -> ResponseStream:
    request = CreateResponseRequest(model="m", input="x")
    return ResponseStream(new_response_object(request, "resp_test"), frozenset({"get_boiling_point"}),
                          argument_streams={"get_boiling_point": MCP_CALL})


def call_chunks(arguments: list[str]) -> list[dict[str, Any]]:
    header = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_boiling_point"}}
    deltas = [{"tool_calls": [header]}]
    deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in arguments]
    return [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]


def run_as_the_turn_does(stream: ResponseStream, call: ToolCall, output: str) -> None:
    """The turn's part for a streamed server call: its item, its phases, its result."""
    item = stream.streamed_tool_item(call)
    assert item is not None and item.item_type == "mcp_call"
    stream.tool_phase(item, "in_progress")
    stream.tool_phase(item, "completed")
    stream.close_tool_item(item, {**MCP_CALL.fields, "arguments": call.arguments, "status": "completed",
                                  "output": output})


def test_a_streamed_server_call_opens_its_item_and_streams_mcp_arguments() -> None:
    stream = mcp_stream()
    events = stream.start()
    for chunk in call_chunks(['{"liquid_name":', '"x"}']):
        stream.feed(chunk)
    events += stream.drain()
    result = stream.finish_call()
    events += stream.drain()
    run_as_the_turn_does(stream, result.tool_calls[0], "-100")
    events += stream.drain() + stream.complete(USAGE)

    assert_valid_stream(events)
    types = [e["type"] for e in events]
    assert types[2:] == [
        "response.output_item.added", "response.mcp_call_arguments.delta", "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done", "response.mcp_call.in_progress", "response.mcp_call.completed",
        "response.output_item.done", "response.completed",
    ]
    for event in events[2:-1]:  # the lifecycle events carry the response, checked in integration tests
        EVENT.validate_python(event)
    assert events[-1]["response"]["output"][0]["arguments"] == '{"liquid_name":"x"}'


def test_a_failing_turn_closes_server_items_left_open() -> None:
    stream = mcp_stream()
    events = stream.start()
    for chunk in call_chunks(['{"liquid_name":"x"}']):
        stream.feed(chunk)
    stream.finish_call()
    events += stream.drain()
    events += stream.fail("server_error", "server_error", "boom", USAGE)

    assert_valid_stream(events)
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["status"] == "incomplete"


def test_client_function_calls_still_stream_function_call_arguments() -> None:
    stream = mcp_stream()
    events = stream.start()
    header = {"index": 0, "id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [header]}, "finish_reason": None}]})
    stream.finish_call()
    events += stream.drain() + stream.complete(USAGE)
    assert_valid_stream(events)
    assert "response.function_call_arguments.done" in [e["type"] for e in events]


def test_a_client_call_is_done_before_a_server_call_after_it_is_added() -> None:
    stream = mcp_stream()
    events = stream.start()
    client_call = {"index": 0, "id": "call_0", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    server_call = {"index": 1, "id": "call_1", "function": {"name": "get_boiling_point", "arguments": "{}"}}
    for delta in ({"tool_calls": [client_call]}, {"tool_calls": [server_call]}):
        stream.feed({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    result = stream.finish_call()
    item = stream.streamed_tool_item(result.tool_calls[1])
    assert item is not None
    stream.close_tool_item(item, {**MCP_CALL.fields, "arguments": "{}", "status": "completed", "output": "1"})
    events += stream.drain() + stream.complete(USAGE)

    assert_valid_stream(events)
    items = [(e["type"].rsplit(".", 1)[-1], e["item"]["type"]) for e in events if "item" in e]
    assert items == [("added", "function_call"), ("done", "function_call"), ("added", "mcp_call"),
                     ("done", "mcp_call")]


def _two_server_calls(stream: ResponseStream) -> list[dict[str, Any]]:
    events = stream.start()
    name = "get_boiling_point"
    first = {"index": 0, "id": "call_a", "function": {"name": name, "arguments": '{"liquid_name": '}}
    second = {"index": 1, "id": "call_b", "function": {"name": name, "arguments": '{"liquid_name": "y"}'}}
    for delta in ({"tool_calls": [first]}, {"tool_calls": [second]},
                  {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}):
        stream.feed({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    return events


def test_a_second_server_call_is_announced_when_it_runs_after_the_first_is_done() -> None:
    # OpenAI's items come one after another; a streamed mcp_call stays open until it has run, so
    # the next one waits to be added until then, with its arguments whole.
    stream = mcp_stream()
    events = _two_server_calls(stream)
    result = stream.finish_call()
    for call in result.tool_calls:  # in order, as the turn runs them
        run_as_the_turn_does(stream, call, "1")
    events += stream.drain() + stream.complete(USAGE)

    assert_valid_stream(events)
    per_item = [(e["type"].removeprefix("response."), e["output_index"]) for e in events if "output_index" in e]
    assert per_item == [
        ("output_item.added", 0), ("mcp_call_arguments.delta", 0), ("mcp_call_arguments.delta", 0),
        ("mcp_call_arguments.done", 0), ("mcp_call.in_progress", 0), ("mcp_call.completed", 0),
        ("output_item.done", 0),
        ("output_item.added", 1), ("mcp_call_arguments.delta", 1), ("mcp_call_arguments.done", 1),
        ("mcp_call.in_progress", 1), ("mcp_call.completed", 1), ("output_item.done", 1),
    ]
    assert [i["arguments"] for i in stream.response["output"]] == ['{"liquid_name": "x"}', '{"liquid_name": "y"}']
    for event in events[2:-1]:
        EVENT.validate_python(event)


def test_a_failing_turn_closes_a_server_call_still_waiting_to_be_announced() -> None:
    stream = mcp_stream()
    events = _two_server_calls(stream)
    stream.finish_call()
    events += stream.drain() + stream.fail("server_error", "server_error", "boom", USAGE)
    assert_valid_stream(events)
    assert [(i["type"], i["status"]) for i in stream.response["output"]] == [("mcp_call", "incomplete")] * 2


def test_a_call_cut_at_the_output_limit_is_closed_as_incomplete_with_the_response() -> None:
    # The turn runs no call of an answer cut short; its item, opened as the model wrote it, is done.
    stream = mcp_stream()
    events = stream.start()
    chunks = call_chunks(['{"liquid_name":'])
    chunks[-1]["choices"][0]["finish_reason"] = "length"
    for chunk in chunks:
        stream.feed(chunk)
    stream.finish_call()
    events += stream.drain() + stream.incomplete("max_output_tokens", USAGE)
    assert_valid_stream(events)
    assert [(item["type"], item["status"]) for item in stream.response["output"]] == [("mcp_call", "incomplete")]


def _server_call_then_client_call(stream: ResponseStream, client_call: dict[str, Any],
                                  finish_reason: str | None = None) -> list[dict[str, Any]]:
    events = stream.start()
    server_call = {"index": 0, "id": "call_0", "function": {"name": "get_boiling_point",
                                                            "arguments": '{"liquid_name": "x"}'}}
    for delta in ({"tool_calls": [server_call]}, {"tool_calls": [client_call]}):
        stream.feed({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason or "tool_calls"}]})
    return events


def test_a_client_call_named_while_a_server_call_is_open_is_added_once_that_call_has_run() -> None:
    # The mcp_call item stays open until the turn has run it, so a client call the model names after
    # it waits: its item is added after the mcp_call's is done, never beside it.
    stream = mcp_stream()
    client_call = {"index": 1, "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    events = _server_call_then_client_call(stream, client_call)
    result = stream.finish_call()
    events += stream.drain()
    assert [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"] == ["mcp_call"]
    # The history the turn keeps now already has the call as the client will see it.
    waiting = result.tool_calls[1]
    assert waiting.call_id.startswith("call_") and waiting.arguments == '{"q": 1}'
    run_as_the_turn_does(stream, result.tool_calls[0], "-100")
    events += stream.drain() + stream.complete(USAGE)

    assert_valid_stream(events)
    per_item = [(e["type"].removeprefix("response."), e["output_index"]) for e in events if "output_index" in e]
    assert per_item[-4:] == [("output_item.added", 1), ("function_call_arguments.delta", 1),
                             ("function_call_arguments.done", 1), ("output_item.done", 1)]
    assert [(i["type"], i["status"]) for i in stream.response["output"]] == [
        ("mcp_call", "completed"), ("function_call", "completed")]
    assert stream.response["output"][1]["call_id"] == waiting.call_id
    for event in events[2:-1]:
        EVENT.validate_python(event)


def test_a_client_call_waiting_behind_a_call_that_never_runs_ends_incomplete_after_it() -> None:
    stream = mcp_stream()
    client_call = {"index": 1, "id": "call_1", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    events = _server_call_then_client_call(stream, client_call, finish_reason="length")
    stream.finish_call()
    events += stream.drain() + stream.incomplete("max_output_tokens", USAGE)
    assert_valid_stream(events)
    assert [(i["type"], i["status"]) for i in stream.response["output"]] == [
        ("mcp_call", "incomplete"), ("function_call", "incomplete")]


def test_a_native_custom_call_waiting_behind_a_server_call_keeps_its_input_raw_and_its_history_in_function_form(
) -> None:
    request = CreateResponseRequest(model="m", input="x")
    shape = ClientTool("custom", "apply_patch", native_custom=True)
    stream = ResponseStream(new_response_object(request, "resp_test"), frozenset({"get_boiling_point"}),
                            argument_streams={"get_boiling_point": MCP_CALL}, client_shapes={"apply_patch": shape})
    client_call = {"index": 1, "id": "call_1", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}
    events = _server_call_then_client_call(stream, client_call)
    result = stream.finish_call()
    assert json.loads(result.tool_calls[1].arguments) == {"input": "*** Begin Patch"}
    run_as_the_turn_does(stream, result.tool_calls[0], "-100")
    events += stream.drain() + stream.complete(USAGE)
    assert_valid_stream(events)
    assert [e.get("delta") for e in events if e["type"] == "response.custom_tool_call_input.delta"] == [
        "*** Begin Patch"]
    assert stream.response["output"][1]["input"] == "*** Begin Patch"
    assert json.loads(result.tool_calls[1].arguments) == {"input": "*** Begin Patch"}


def test_the_validator_refuses_an_item_added_while_a_server_call_is_open() -> None:
    stream = mcp_stream()
    events = _two_server_calls(stream)
    result = stream.finish_call()
    for call in result.tool_calls:
        run_as_the_turn_does(stream, call, "1")
    events += stream.drain() + stream.complete(USAGE)
    added = [i for i, e in enumerate(events) if e["type"] == "response.output_item.added"]
    first_done = next(i for i, e in enumerate(events) if e["type"] == "response.output_item.done")
    events.insert(first_done, events.pop(added[1]))  # the second call added before the first is done
    assert any("item added while mcp_call item" in error for error in stream_grammar_errors(events))


def test_a_server_call_named_while_a_client_calls_arguments_are_unfinished_is_added_after_that_call() -> None:
    # A backend that interleaves calls names the MCP call before the client call's arguments are a
    # whole JSON object: the client call's item is still open then, so the mcp_call waits to be
    # added until the turn runs it, after the client call is done, and keeps the model's order.
    stream = mcp_stream()
    events = stream.start()
    client = {"index": 0, "id": "call_0", "function": {"name": "lookup", "arguments": '{"q": '}}
    server = {"index": 1, "id": "call_1", "function": {"name": "get_boiling_point",
                                                       "arguments": '{"liquid_name": "x"}'}}
    rest = {"index": 0, "function": {"arguments": "1}"}}
    for delta in ({"tool_calls": [client]}, {"tool_calls": [server]}, {"tool_calls": [rest]}):
        stream.feed({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    result = stream.finish_call()
    events += stream.drain()
    run_as_the_turn_does(stream, result.tool_calls[1], "-100")
    events += stream.drain() + stream.complete(USAGE)

    assert_valid_stream(events)
    assert [(i["type"], i["status"]) for i in stream.response["output"]] == [
        ("function_call", "completed"), ("mcp_call", "completed")]
    assert stream.response["output"][0]["arguments"] == '{"q": 1}'
    assert stream.response["output"][1]["arguments"] == '{"liquid_name": "x"}'
    for event in events[2:-1]:
        EVENT.validate_python(event)
