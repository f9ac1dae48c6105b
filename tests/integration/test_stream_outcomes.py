"""What the model or the upstream does decides the terminal state: incomplete, failed, reasoning,
refusal, client disconnect. Each case is checked streaming and stored."""

from __future__ import annotations

import time

import httpx
import openai
import orjson
import pytest

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import (
    ScriptedUpstream,
    dropped_reply,
    error_reply,
    make_usage,
    reasoning_reply,
    refusal_reply,
    slow_reply,
    text_reply,
    tool_calls_reply,
)
from tests.integration.sdk import sdk, stream_events


def test_length_finish_gives_incomplete_with_max_output_tokens(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Once upon a", finish_reason="length"))
    events = stream_events(fake_server, model="fake/m", input="Tell a story", max_output_tokens=16)

    assert_valid_stream(events)
    final = events[-1]
    assert final.type == "response.incomplete"
    assert final.response.status == "incomplete"
    assert final.response.incomplete_details.reason == "max_output_tokens"
    assert final.response.output[0].status == "incomplete"
    assert upstream.requests[0]["max_completion_tokens"] == 16
    assert sdk(fake_server).responses.retrieve(final.response.id).status == "incomplete"


def test_upstream_500_streaming_gives_error_then_failed_and_stores_failed(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(error_reply(500, "backend exploded"))
    events = stream_events(fake_server, model="fake/m", input="hi")

    assert_valid_stream(events)
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1].response
    assert failed.error is not None and "backend exploded" in failed.error.message
    assert sdk(fake_server).responses.retrieve(failed.id).status == "failed"


def test_upstream_500_non_streaming_gives_error_envelope_and_stores_failed(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(error_reply(500, "backend exploded"))
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(fake_server).responses.create(model="fake/m", input="hi")
    assert caught.value.status_code == 502
    assert "backend exploded" in caught.value.message
    # The SDK has no list method; the listing endpoint shows the stored failure.
    [stored] = httpx.get(f"{fake_server.base_url}/responses?limit=1").json()["data"]
    assert stored["status"] == "failed"
    assert stored["error"]["code"] == "server_error"


def test_connection_dropped_mid_stream_gives_failed_with_partial_output(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(dropped_reply("one two three four five six", after_chunks=3))
    events = stream_events(fake_server, model="fake/m", input="count")

    assert_valid_stream(events)
    final = events[-1].response
    assert events[-1].type == "response.failed"
    assert final.output and final.output[0].status == "incomplete"
    assert final.error is not None and "upstream connection failed" in final.error.message
    assert sdk(fake_server).responses.retrieve(final.id).status == "failed"


def test_json_schema_format_is_passed_through(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply('{"name": "Saturn"}'))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    response = sdk(fake_server).responses.create(
        model="fake/m", input="A planet?",
        text={"format": {"type": "json_schema", "name": "planet", "schema": schema, "strict": True}},
    )
    assert upstream.requests[0]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "planet", "schema": schema, "strict": True}}
    assert response.text.format.type == "json_schema"  # type: ignore[union-attr]
    assert orjson.loads(response.output_text) == {"name": "Saturn"}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_stream_becomes_a_reasoning_item_before_the_message(
    fake_server: RunningServer, upstream: ScriptedUpstream, field: str
) -> None:
    upstream.enqueue(reasoning_reply("Rings... Saturn.", "Saturn.", field=field,
                                     usage=make_usage(10, 20, reasoning_tokens=12)))
    events = stream_events(fake_server, model="fake/m", input="Ringed planet?", reasoning={"effort": "low"})

    assert_valid_stream(events)
    final = events[-1].response
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "Rings... Saturn."
    reasoning_deltas = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert reasoning_deltas == "Rings... Saturn."
    assert final.usage.output_tokens_details.reasoning_tokens == 12
    assert upstream.requests[0]["reasoning_effort"] == "low"


def test_reasoning_is_sent_back_as_reasoning_content_on_the_next_turn(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(
        reasoning_reply("I need the weather tool.", "", usage=make_usage(5, 5)),
        text_reply("Done."),
    )
    client = sdk(fake_server)
    first = client.responses.create(model="fake/m", input="Think first")
    client.responses.create(model="fake/m", input="And now?", previous_response_id=first.id)
    assistant = upstream.requests[1]["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning_content"] == "I need the weather tool."


def test_reasoning_item_given_as_input_rides_on_the_next_assistant_message(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("ok"))
    sdk(fake_server).responses.create(model="fake/m", input=[
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "use tool"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ])
    assert upstream.requests[0]["messages"][1]["reasoning_content"] == "use tool"


def test_refusal_stream_becomes_a_refusal_part(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(refusal_reply("I can't help with that."))
    events = stream_events(fake_server, model="fake/m", input="Something bad")

    assert_valid_stream(events)
    kinds = [e.type for e in events]
    assert "response.refusal.delta" in kinds and "response.refusal.done" in kinds
    [message] = events[-1].response.output
    assert message.content[0].type == "refusal"
    assert message.content[0].refusal == "I can't help with that."


def test_client_disconnect_stops_upstream_and_stores_a_cancelled_response(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(slow_reply("a b c d e f g h i j k l m n o p", delay_s=0.2, pieces=16))
    response_id = _read_until_first_delta_then_hang_up(fake_server)

    assert upstream.wait_for_disconnect(timeout=10), "the upstream call was not stopped"
    stored = _wait_for_stored(fake_server, response_id)
    assert stored.status == "cancelled"
    assert stored.output and stored.output[0].status == "incomplete"


def _read_until_first_delta_then_hang_up(server: RunningServer) -> str:
    response_id = ""
    body = {"model": "fake/m", "input": "slow please", "stream": True}
    with httpx.Client(timeout=10) as http, http.stream("POST", f"{server.base_url}/responses", json=body) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            event = orjson.loads(line[6:])
            if event["type"] == "response.created":
                response_id = event["response"]["id"]
            if event["type"] == "response.output_text.delta":
                break
    return response_id


def _wait_for_stored(server: RunningServer, response_id: str) -> openai.types.responses.Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return sdk(server).responses.retrieve(response_id)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_tool_call_then_text_in_one_stream_keeps_grammar(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_1", "lookup", '{"q": "x"}')], usage=make_usage(3, 4)))
    events = stream_events(fake_server, model="fake/m", input="x", tools=[
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}])
    assert_valid_stream(events)
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == '{"q": "x"}'


def test_the_turn_is_stored_before_the_terminal_event_is_sent(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("stored first"))
    client = sdk(fake_server)
    for event in client.responses.create(model="fake/m", input="hi", stream=True):
        if event.type == "response.completed":
            # Read while the stream is still open: the row must already be there.
            assert client.responses.retrieve(event.response.id).status == "completed"
