"""The state machine alone: chat chunks in, a valid Responses event stream out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from riposte.engine.request import CreateResponseRequest
from riposte.engine.response_object import new_response_object
from riposte.engine.stream_state import OutputLimitReached, ResponseStream
from riposte.errors import UpstreamError
from riposte.testing.grammar import assert_valid_stream, stream_grammar_errors
from tests.conftest import SEED_RECORDINGS


def new_stream(server_tools: frozenset[str] = frozenset()) -> ResponseStream:
    request = CreateResponseRequest(model="m", input="x")
    return ResponseStream(new_response_object(request, "resp_test"), server_tools)


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def run(stream: ResponseStream, chunks: list[dict[str, Any]], terminal: str = "complete") -> list[dict[str, Any]]:
    events = stream.start()
    for c in chunks:
        stream.feed(c)
        events += stream.drain()
    stream.finish_call()
    events += stream.drain()
    usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    events += stream.complete(usage) if terminal == "complete" else stream.incomplete("max_output_tokens", usage)
    return events


def test_seed_001_chunks_make_a_valid_message_stream() -> None:
    recording = json.loads(next(SEED_RECORDINGS.glob("001_*.json")).read_text())
    chunks = [c["__data__"] for c in recording["response"]["body"]]
    stream = new_stream()
    events = run(stream, chunks)

    assert_valid_stream(events)
    types = [e["type"] for e in events]
    assert types[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert stream.response["output"][0]["content"][0]["text"].startswith("The planet")


def test_reasoning_then_text_orders_the_reasoning_item_first() -> None:
    events = run(new_stream(), [chunk({"reasoning_content": "think"}), chunk({"content": "answer"}, "stop")])
    assert_valid_stream(events)
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    reasoning_id = next(e["item"]["id"] for e in events if e["type"] == "response.output_item.added")
    reasoning_events = [e["type"] for e in events
                        if reasoning_id in (e.get("item_id"), e.get("item", {}).get("id"))]
    assert reasoning_events == ["response.output_item.added", "response.content_part.added",
                                "response.reasoning_text.delta", "response.reasoning_text.done",
                                "response.content_part.done", "response.output_item.done"]


def test_tool_call_arguments_before_the_name_are_announced_once_the_name_arrives() -> None:
    stream = new_stream()
    events = run(stream, [
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ": 1}"}}]}, "tool_calls"),
    ])
    assert_valid_stream(events)
    [item] = stream.response["output"]
    assert (item["call_id"], item["name"], item["arguments"]) == ("call_1", "f", '{"a": 1}')


def test_a_message_is_done_before_the_tool_call_that_follows_it_is_added() -> None:
    # A preamble, a call, then more text (some backends write after a call): one item after another.
    stream = new_stream()
    events = stream.start()
    for delta in ({"content": "Let me "}, {"content": "look."},
                  {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "ls", "arguments": "{}"}}]},
                  {"content": "Done."}):
        stream.feed(chunk(delta))
    result = stream.finish_call()
    events += stream.drain()
    events += stream.complete({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert_valid_stream(events)
    items = [(e["type"].rsplit(".", 1)[-1], e["output_index"]) for e in events
             if e["type"] in ("response.output_item.added", "response.output_item.done")]
    assert items == [("added", 0), ("done", 0), ("added", 1), ("done", 1), ("added", 2), ("done", 2)]
    assert [item["type"] for item in stream.response["output"]] == ["message", "function_call", "message"]
    assert stream.response["output"][0]["content"][0]["text"] == "Let me look."
    assert result.text == "Let me look.Done."  # the call's whole text, as history replays it
    assert [call.name for call in result.tool_calls] == ["ls"]


def _item_events(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(event type without its `response.` prefix, output_index) of every item-level event."""
    return [(e["type"].removeprefix("response."), e["output_index"]) for e in events
            if "output_index" in e and e["type"] != "response.output_text.delta"]


def _call(index: int, name: str | None = None, arguments: str = "") -> dict[str, Any]:
    function = {"arguments": arguments} | ({"name": name} if name else {})
    return {"index": index, **({"id": f"call_{index}"} if name else {}), "function": function}


def test_parallel_calls_stream_one_after_another() -> None:
    # OpenAI's own stream has each call done before the next is added; clients that track a single
    # current item (several in the wild) send a call's `arguments.done` to the wrong item otherwise.
    stream = new_stream()
    events = run(stream, [
        chunk({"tool_calls": [_call(0, "get_weather", '{"city": ')]}),
        chunk({"tool_calls": [_call(0, arguments='"Paris"}')]}),
        chunk({"tool_calls": [_call(1, "get_time", '{"zone": "CET"}')]}),
        chunk({}, "tool_calls"),
    ])
    assert_valid_stream(events)
    assert _item_events(events) == [
        ("output_item.added", 0), ("function_call_arguments.delta", 0), ("function_call_arguments.delta", 0),
        ("function_call_arguments.done", 0), ("output_item.done", 0),
        ("output_item.added", 1), ("function_call_arguments.delta", 1),
        ("function_call_arguments.done", 1), ("output_item.done", 1),
    ]
    assert [(i["name"], i["arguments"], i["status"]) for i in stream.response["output"]] == [
        ("get_weather", '{"city": "Paris"}', "completed"), ("get_time", '{"zone": "CET"}', "completed")]


def test_interleaved_calls_wait_for_the_live_call_to_be_whole() -> None:
    # A backend that interleaves calls' fragments: the second call opens once the first's arguments
    # are a whole object, with what it streamed meanwhile as one delta; nothing is lost or reordered.
    stream = new_stream()
    events = run(stream, [
        chunk({"tool_calls": [_call(0, "a", '{"x": ')]}),
        chunk({"tool_calls": [_call(1, "b", '{"y": ')]}),
        chunk({"tool_calls": [_call(1, arguments="2")]}),
        chunk({"tool_calls": [_call(0, arguments="1}")]}),
        chunk({"tool_calls": [_call(1, arguments="}")]}),
        chunk({"tool_calls": [_call(2, "c", '{"z": 3')]}),  # never whole: closed as it is at the end
        chunk({}, "tool_calls"),
    ])
    assert_valid_stream(events)
    assert [e for e in _item_events(events) if e[0].startswith("output_item")] == [
        ("output_item.added", 0), ("output_item.done", 0), ("output_item.added", 1), ("output_item.done", 1),
        ("output_item.added", 2), ("output_item.done", 2)]
    deltas = [(e["output_index"], e["delta"]) for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == [(0, '{"x": '), (0, "1}"), (1, '{"y": 2'), (1, "}"), (2, '{"z": 3')]
    assert [i["arguments"] for i in stream.response["output"]] == ['{"x": 1}', '{"y": 2}', '{"z": 3']


def test_a_call_still_waiting_when_the_upstream_call_ends_opens_and_closes_in_turn() -> None:
    stream = new_stream()
    events = stream.start()
    for delta in ({"tool_calls": [_call(0, "a", '{"x": ')]}, {"tool_calls": [_call(1, "b", '{"y": 2}')]}):
        stream.feed(chunk(delta))
    result = stream.finish_call()
    events += stream.drain() + stream.complete({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert_valid_stream(events)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("a", '{"x": '), ("b", '{"y": 2}')]
    assert [i["type"] for i in stream.response["output"]] == ["function_call", "function_call"]


def test_text_after_a_whole_call_closes_it_first() -> None:
    stream = new_stream()
    events = run(stream, [chunk({"tool_calls": [_call(0, "a", "{}")]}), chunk({"content": "and then"}, "stop")])
    assert_valid_stream(events)
    assert [e for e in _item_events(events) if e[0].startswith("output_item")] == [
        ("output_item.added", 0), ("output_item.done", 0), ("output_item.added", 1), ("output_item.done", 1)]


def test_a_done_call_takes_trailing_whitespace_and_refuses_more_arguments() -> None:
    stream = new_stream()
    stream.start()
    for delta in ({"tool_calls": [_call(0, "a", "{}")]}, {"tool_calls": [_call(1, "b", "{}")]},
                  {"tool_calls": [_call(0, arguments=" \n")]}):
        stream.feed(chunk(delta))
    assert stream.response["output"][0]["arguments"] == "{}"
    with pytest.raises(UpstreamError, match="tool call 0's arguments after they were a whole JSON object"):
        stream.feed(chunk({"tool_calls": [_call(0, arguments=', "more": 1}')]}))


def test_the_validator_refuses_a_call_added_while_another_client_call_is_open() -> None:
    events = run(new_stream(), [chunk({"tool_calls": [_call(0, "a", "{}")]})])
    call_done = next(i for i, e in enumerate(events) if e["type"] == "response.output_item.done")
    call = {"id": "fc_2", "type": "function_call", "call_id": "c", "name": "f", "arguments": "",
            "status": "in_progress"}
    events.insert(call_done, {"type": "response.output_item.added", "output_index": 1, "item": call,
                              "sequence_number": -1})
    assert any("function_call item" in error and "still open" in error for error in stream_grammar_errors(events))


def test_the_validator_refuses_an_item_added_while_a_message_is_open() -> None:
    events = run(new_stream(), [chunk({"content": "hi"})])
    message_done = next(i for i, e in enumerate(events) if e["type"] == "response.output_item.done")
    call = {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "f", "arguments": "",
            "status": "in_progress"}
    events.insert(message_done - 3, {"type": "response.output_item.added", "output_index": 1, "item": call,
                                     "sequence_number": -1})
    assert any("still open" in error for error in stream_grammar_errors(events))


def test_server_side_tool_calls_emit_no_function_call_items() -> None:
    stream = new_stream(server_tools=frozenset({"knowledge_search"}))
    stream.start()
    stream.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "knowledge_search",
                                                                             "arguments": "{}"}}]}, "tool_calls"))
    result = stream.finish_call()
    assert stream.response["output"] == []
    assert [c.name for c in result.tool_calls] == ["knowledge_search"]


def test_length_marks_the_message_incomplete() -> None:
    stream = new_stream()
    events = run(stream, [chunk({"content": "cut"}, "length")], terminal="incomplete")
    assert_valid_stream(events)
    assert stream.response["output"][0]["status"] == "incomplete"
    assert stream.response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failure_closes_open_items_before_error_and_failed() -> None:
    stream = new_stream()
    events = stream.start()
    stream.feed(chunk({"content": "partial"}))
    events += stream.drain()
    events += stream.fail("upstream_error", "server_error", "boom", {"input_tokens": 0, "output_tokens": 0,
                                                                      "total_tokens": 0})
    assert_valid_stream(events)
    assert [e["type"] for e in events[-3:]] == ["response.output_item.done", "error", "response.failed"]


def test_validator_catches_a_missing_terminal_event() -> None:
    stream = new_stream()
    events = stream.start()
    stream.feed(chunk({"content": "x"}))
    events += stream.drain()
    assert stream_grammar_errors(events)


def test_cited_markers_become_annotations_with_events_and_clean_deltas() -> None:
    stream = new_stream()
    stream.finish_call()  # a search runs between two upstream calls
    stream.cite({"file-1": "a.txt"})
    events = run(stream, [chunk({"content": "Revenue grew <|fi"}), chunk({"content": "le-1|>."}, "stop")])

    assert_valid_stream(events)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "Revenue grew."
    [added] = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    annotation = {"type": "file_citation", "file_id": "file-1", "filename": "a.txt", "index": 12}
    assert added["annotation"] == annotation and added["annotation_index"] == 0
    assert stream.response["output"][0]["content"][0]["annotations"] == [annotation]


def test_the_output_cap_ends_the_call_as_length_before_the_delta_that_crosses_it() -> None:
    request = CreateResponseRequest(model="m", input="x")
    stream = ResponseStream(new_response_object(request, "resp_test"), max_output_chars=10)
    events = stream.start()
    stream.feed(chunk({"content": "12345"}))
    with pytest.raises(OutputLimitReached):
        stream.feed(chunk({"content": "6789012"}))
    assert stream.call_finished
    result = stream.finish_call()
    events += stream.drain() + stream.incomplete("max_output_tokens", {})
    assert_valid_stream(events)
    assert (result.text, result.finish_reason) == ("12345", "length")
    assert stream.response["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize("delta", [{"content": 42}, {"content": ["a"]}, {"refusal": {"x": 1}},
                                   {"reasoning_content": 3.5},
                                   {"tool_calls": [{"index": 0, "function": {"name": 7}}]},
                                   {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}])
def test_a_field_of_the_wrong_type_is_an_upstream_error_and_leaves_the_stream_closable(
    delta: dict[str, Any],
) -> None:
    stream = new_stream()
    events = stream.start()
    stream.feed(chunk({"content": "Hi"}))
    with pytest.raises(UpstreamError, match="not a string"):
        stream.feed(chunk(delta))
    events += stream.drain() + stream.fail("upstream_error", "server_error", "bad chunk", {})
    assert_valid_stream(events)
    assert stream.response["output"][0]["content"][0]["text"] == "Hi"


def test_a_stream_without_a_finish_reason_is_not_finished() -> None:
    stream = new_stream()
    stream.feed(chunk({"content": "Hi"}))
    assert not stream.call_finished
    stream.feed(chunk({}, finish_reason="stop"))
    assert stream.call_finished


def _with_ids_in_order(events: list[dict[str, Any]]) -> str:
    """The events as JSON with each generated id replaced by its order of appearance."""
    text = json.dumps(events)
    for index, found in enumerate(dict.fromkeys(re.findall(r'"((?:msg|rs)_[0-9a-f]+)"', text))):
        text = text.replace(found, f"id{index}")
    return text


PLAIN_TEXT_MIXES = {
    "text only": [chunk({"role": "assistant", "content": ""}), chunk({"content": "a"}), chunk({"content": "b"}),
                  chunk({}, "stop")],
    "reasoning between texts": [chunk({"content": "a"}), chunk({"reasoning_content": "r"}), chunk({"content": "b"}),
                                chunk({"content": "c"}, "stop")],
    "logprobs in the middle": [chunk({"content": "a"}),
                               {"choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": None,
                                             "logprobs": {"content": [{"token": "b", "logprob": -0.5}]}}]},
                               chunk({"content": "c"}, "stop")],
    "refusal then text": [chunk({"refusal": "no"}), chunk({"content": "a"}), chunk({"content": "b"}, "stop")],
    "text then refusal then text": [chunk({"content": "a"}), chunk({"refusal": "no"}), chunk({"content": "b"}),
                                    chunk({}, "stop")],
}


@pytest.mark.parametrize("mix", PLAIN_TEXT_MIXES)
def test_the_short_path_for_plain_text_gives_the_events_of_the_general_one(mix: str) -> None:
    # Forgetting the plain text part before every chunk sends each token down the general path.
    general = new_stream()
    events = general.start()
    for c in PLAIN_TEXT_MIXES[mix]:
        general._plain_text = None
        general.feed(c)
        events += general.drain()
    general.finish_call()
    events += general.drain()

    assert _with_ids_in_order(run(new_stream(), PLAIN_TEXT_MIXES[mix])[:-1]) == _with_ids_in_order(events)


def test_the_short_path_ends_with_its_call_and_a_citing_call_filters_again() -> None:
    stream = new_stream()
    stream.start()
    stream.feed(chunk({"content": "a"}, "stop"))
    stream.finish_call()
    stream.cite({"file-1": "notes.txt"})
    stream.feed(chunk({"content": "see <|file-1|> x"}, "stop"))
    stream.finish_call()
    deltas = [e["delta"] for e in stream.drain() if e["type"] == "response.output_text.delta"]
    assert "<|file-1|>" not in "".join(deltas)
