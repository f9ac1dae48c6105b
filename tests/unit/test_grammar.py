"""The stream-grammar validator must accept a well-formed stream and provably reject broken ones."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.testing.grammar import assert_valid_stream, stream_grammar_errors

Event = dict[str, Any]

MESSAGE_DONE: Event = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
}
CALL_DONE: Event = {
    "id": "fc_1",
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city":"Paris"}',
    "status": "completed",
}


def response(status: str, output: list[Event]) -> Event:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "model": "fake-model",
        "status": status,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def valid_stream() -> list[Event]:
    """A message followed by a function call, shaped like OpenAI's own streams."""
    text_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    message_ref = {"item_id": "msg_1", "output_index": 0}
    text_ref = {**message_ref, "content_index": 0}
    call_ref = {"item_id": "fc_1", "output_index": 1}
    events: list[Event] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {"type": "response.in_progress", "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**MESSAGE_DONE, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **text_ref, "part": text_part},
        {"type": "response.output_text.delta", **text_ref, "delta": "Hel", "logprobs": []},
        {"type": "response.output_text.delta", **text_ref, "delta": "lo", "logprobs": []},
        {"type": "response.output_text.done", **text_ref, "text": "Hello", "logprobs": []},
        {"type": "response.content_part.done", **text_ref, "part": {**text_part, "text": "Hello"}},
        {"type": "response.output_item.done", "output_index": 0, "item": MESSAGE_DONE},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**CALL_DONE, "status": "in_progress", "arguments": ""},
        },
        {"type": "response.function_call_arguments.delta", **call_ref, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", **call_ref, "delta": '"Paris"}'},
        {"type": "response.function_call_arguments.done", **call_ref, "arguments": '{"city":"Paris"}'},
        {"type": "response.output_item.done", "output_index": 1, "item": CALL_DONE},
        {"type": "response.completed", "response": response("completed", [MESSAGE_DONE, CALL_DONE])},
    ]
    return renumbered(events)


def renumbered(events: list[Event]) -> list[Event]:
    # Deep copies: the fixtures reuse item dicts, and a test breaking one place must not edit another.
    return [{**copy.deepcopy(event), "sequence_number": n} for n, event in enumerate(events)]


def find(events: list[Event], kind: str, nth: int = 0) -> Event:
    return [e for e in events if e["type"] == kind][nth]


def test_valid_stream_passes_as_dicts_and_as_sdk_models() -> None:
    events = valid_stream()
    assert stream_grammar_errors(events) == []
    # The same stream as the SDK's typed events: also proves the fixture is realistic.
    adapter: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
    sdk_events = [adapter.validate_python(e) for e in events]
    assert stream_grammar_errors(sdk_events) == []
    assert_valid_stream(sdk_events)


def test_reasoning_refusal_and_failed_stream_pass() -> None:
    reasoning_done = {
        "id": "rs_1",
        "type": "reasoning",
        "status": "completed",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "hmm"}],
    }
    refusal_done = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "status": "incomplete",
        "content": [{"type": "refusal", "refusal": "No."}],
    }
    r_ref = {"item_id": "rs_1", "output_index": 0, "content_index": 0}
    m_ref = {"item_id": "msg_2", "output_index": 1, "content_index": 0}
    failed = response("failed", [reasoning_done, refusal_done])
    events = renumbered(
        [
            {"type": "response.created", "response": response("in_progress", [])},
            {"type": "response.in_progress", "response": response("in_progress", [])},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**reasoning_done, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **r_ref, "part": {"type": "reasoning_text", "text": ""}},
            {"type": "response.reasoning_text.delta", **r_ref, "delta": "hmm"},
            {"type": "response.reasoning_text.done", **r_ref, "text": "hmm"},
            {"type": "response.content_part.done", **r_ref, "part": {"type": "reasoning_text", "text": "hmm"}},
            {"type": "response.output_item.done", "output_index": 0, "item": reasoning_done},
            {
                "type": "response.output_item.added",
                "output_index": 1,
                "item": {**refusal_done, "status": "in_progress", "content": []},
            },
            {"type": "response.content_part.added", **m_ref, "part": {"type": "refusal", "refusal": ""}},
            {"type": "response.refusal.delta", **m_ref, "delta": "No."},
            {"type": "response.refusal.done", **m_ref, "refusal": "No."},
            {"type": "response.content_part.done", **m_ref, "part": {"type": "refusal", "refusal": "No."}},
            {"type": "response.output_item.done", "output_index": 1, "item": refusal_done},
            {"type": "error", "code": "server_error", "message": "upstream died", "param": None},
            {"type": "response.failed", "response": failed},
        ]
    )
    assert stream_grammar_errors(events) == []


def test_annotations_may_appear_only_in_the_final_response() -> None:
    events = valid_stream()
    final_message = find(events, "response.completed")["response"]["output"][0]
    final_message["content"][0]["annotations"] = [
        {"type": "url_citation", "url": "https://x", "title": "x", "start_index": 0, "end_index": 5}
    ]
    assert stream_grammar_errors(events) == []


def drop_created(events: list[Event]) -> list[Event]:
    return renumbered(events[1:])


def repeat_sequence_number(events: list[Event]) -> list[Event]:
    events[5]["sequence_number"] = 4
    return events


def leave_item_unclosed(events: list[Event]) -> list[Event]:
    events.remove(find(events, "response.output_item.done", 1))
    return renumbered(events)


def add_second_terminal(events: list[Event]) -> list[Event]:
    terminal = find(events, "response.completed")
    return renumbered([*events[:-1], {**terminal, "type": "response.incomplete"}, terminal])


def mismatch_text_done(events: list[Event]) -> list[Event]:
    find(events, "response.output_text.done")["text"] = "Help"
    return events


def mismatch_arguments_done(events: list[Event]) -> list[Event]:
    find(events, "response.function_call_arguments.done")["arguments"] = "{}"
    return events


def mismatch_final_id(events: list[Event]) -> list[Event]:
    find(events, "response.completed")["response"]["output"][1]["id"] = "fc_other"
    return events


def mismatch_final_text(events: list[Event]) -> list[Event]:
    find(events, "response.completed")["response"]["output"][0]["content"][0]["text"] = "Hi"
    return events


def reorder_final_output(events: list[Event]) -> list[Event]:
    output = find(events, "response.completed")["response"]["output"]
    output.reverse()
    return events


def delta_after_part_done(events: list[Event]) -> list[Event]:
    late = {**find(events, "response.output_text.delta"), "delta": "!"}
    index = events.index(find(events, "response.content_part.done")) + 1
    return renumbered([*events[:index], late, *events[index:]])


def skip_output_text_done(events: list[Event]) -> list[Event]:
    events.remove(find(events, "response.output_text.done"))
    return renumbered(events)


def wrong_output_index(events: list[Event]) -> list[Event]:
    find(events, "response.output_item.added", 1)["output_index"] = 2
    return events


def item_without_status(events: list[Event]) -> list[Event]:
    del find(events, "response.output_item.added")["item"]["status"]
    return events


def second_event_not_in_progress(events: list[Event]) -> list[Event]:
    del events[1]
    return renumbered(events)


def created_not_in_progress(events: list[Event]) -> list[Event]:
    events[0]["response"]["status"] = "completed"
    return events


def error_event_mid_stream(events: list[Event]) -> list[Event]:
    error = {"type": "error", "code": None, "message": "oops", "param": None}
    return renumbered([*events[:5], error, *events[5:]])


@pytest.mark.parametrize(
    ("break_stream", "expected"),
    [
        (drop_created, "first event must be response.created"),
        (repeat_sequence_number, "sequence_number should be 5"),
        (leave_item_unclosed, "'fc_1' was added but never done"),
        (add_second_terminal, "second terminal event"),
        (mismatch_text_done, "text is not the concatenation of the deltas"),
        (mismatch_arguments_done, "arguments is not the concatenation of the deltas"),
        (mismatch_final_id, "response.output ids"),
        (mismatch_final_text, "differs from its output_item.done in ['content']"),
        (reorder_final_output, "response.output ids"),
        (delta_after_part_done, "already done"),
        (skip_output_text_done, "closed without its .done text event"),
        (wrong_output_index, "output_index should be 1"),
        (item_without_status, "item has no status"),
        (second_event_not_in_progress, "second event must be response.in_progress"),
        (created_not_in_progress, "response.created must carry status in_progress"),
        (error_event_mid_stream, "error event may only come right before response.failed"),
    ],
)
def test_broken_stream_is_rejected(break_stream: Callable[[list[Event]], list[Event]], expected: str) -> None:
    events = break_stream(valid_stream())
    errors = stream_grammar_errors(events)
    assert any(expected in e for e in errors), errors
    with pytest.raises(AssertionError, match="invalid Responses event stream"):
        assert_valid_stream(events)


def queued(events: list[Event]) -> list[Event]:
    """The stream as a queued background response opens it: created and queued, both `queued`."""
    events[0]["response"]["status"] = "queued"
    waiting = {"type": "response.queued", "response": copy.deepcopy(events[0]["response"])}
    return renumbered([events[0], waiting, *events[1:]])


def test_a_queued_background_stream_opens_with_created_and_queued() -> None:
    stream = queued(valid_stream())
    assert stream_grammar_errors(stream) == []
    adapter: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
    assert_valid_stream([adapter.validate_python(e) for e in stream])  # the SDK's types too
    still_in_progress = queued(valid_stream())
    still_in_progress[0]["response"]["status"] = "in_progress"
    assert "response.created must carry status queued" in " ".join(stream_grammar_errors(still_in_progress))
    no_progress = queued(valid_stream())
    del no_progress[2]
    assert "third event must be response.in_progress" in " ".join(stream_grammar_errors(renumbered(no_progress)))
    twice = queued(valid_stream())
    twice.insert(3, copy.deepcopy(twice[1]))
    assert "response.queued sent more than once" in " ".join(stream_grammar_errors(renumbered(twice)))


def test_garbage_inputs_are_reported_not_crashing() -> None:
    assert stream_grammar_errors([]) == ["stream is empty"]
    assert "not a dict or pydantic model" in stream_grammar_errors([42])[0]
    weird = valid_stream()
    weird[4]["item_id"] = ["not", "hashable"]
    assert any("is not a non-empty string" in e for e in stream_grammar_errors(weird))


def test_reasoning_text_streams_inside_its_content_part_which_closes_before_the_item() -> None:
    """As for a message's text: the openai Node SDK's accumulator refuses a reasoning_text delta
    whose part was never added."""
    from riposte.engine.request import CreateResponseRequest
    from riposte.engine.response_object import new_response_object
    from riposte.engine.stream_state import ResponseStream

    stream = ResponseStream(new_response_object(CreateResponseRequest(model="m", input="x"), "resp_1"))
    events = stream.start()
    stream.feed({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]})
    events += stream.drain()
    stream.finish_call()
    events += stream.drain()
    events += stream.complete({"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert stream_grammar_errors(events) == []

    for left_out in ("response.reasoning_text.done", "response.content_part.added", "response.content_part.done"):
        broken = [e for e in events if e["type"] != left_out]
        renumbered = [{**e, "sequence_number": n} for n, e in enumerate(broken)]
        assert stream_grammar_errors(renumbered), left_out


def test_mcp_items_may_have_no_status_and_their_phases_must_target_them() -> None:
    listing = {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "s", "tools": []}
    response = {"id": "resp_1", "status": "in_progress", "output": []}
    events = [
        {"type": "response.created", "sequence_number": 0, "response": response},
        {"type": "response.in_progress", "sequence_number": 1, "response": response},
        {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": listing},
        {"type": "response.mcp_list_tools.in_progress", "sequence_number": 3, "output_index": 0,
         "item_id": "mcpl_1"},
        {"type": "response.mcp_call.completed", "sequence_number": 4, "output_index": 0, "item_id": "mcpl_1"},
        {"type": "response.output_item.done", "sequence_number": 5, "output_index": 0, "item": listing},
        {"type": "response.completed", "sequence_number": 6,
         "response": {"id": "resp_1", "status": "completed", "output": [listing]}},
    ]
    errors = stream_grammar_errors(events)
    assert len(errors) == 1 and "expected 'mcp_call'" in errors[0]
