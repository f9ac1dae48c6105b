"""Client-side function tools through a scripted upstream: round trips, parallel calls, choices."""

from __future__ import annotations

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import sdk, stream_events

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_function_call_round_trip_through_previous_response_id(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_w1", "get_weather", '{"city": "Paris"}')]),
                     text_reply("It is sunny in Paris."))
    client = sdk(fake_server)

    first = client.responses.create(model="fake/m", input="Weather in Paris?", tools=[WEATHER_TOOL])
    [call] = first.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments, call.status) == (
        "call_w1", "get_weather", '{"city": "Paris"}', "completed")
    assert call.id and call.id.startswith("fc_")
    assert upstream.requests[0]["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.", "parameters": WEATHER_TOOL["parameters"]}}]

    second = client.responses.create(
        model="fake/m", previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 24C"}],
    )
    assert second.output_text == "It is sunny in Paris."
    assert upstream.requests[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_w1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_w1", "content": "sunny, 24C"},
    ]
    kinds = [item.type for item in client.responses.input_items.list(second.id, order="asc").data]
    assert kinds == ["message", "function_call", "function_call_output"]


def test_parallel_tool_calls_become_separate_items_with_stable_ids(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_a", "get_weather", '{"city": "Oslo"}'),
                                       ("call_b", "get_weather", '{"city": "Rome"}')]))
    events = stream_events(fake_server, model="fake/m", input="Oslo and Rome?", tools=[WEATHER_TOOL],
                           parallel_tool_calls=True)

    assert_valid_stream(events)
    final = events[-1].response
    assert [(o.type, o.call_id, o.arguments) for o in final.output] == [
        ("function_call", "call_a", '{"city": "Oslo"}'), ("function_call", "call_b", '{"city": "Rome"}')]
    added = [e.item.id for e in events if e.type == "response.output_item.added"]
    assert added == [o.id for o in final.output]
    assert upstream.requests[0]["parallel_tool_calls"] is True
    stored = sdk(fake_server).responses.retrieve(final.id)
    assert [o.id for o in stored.output] == added


def test_client_resending_the_calls_with_outputs_gets_each_output_after_its_call(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Oslo is colder."))
    sdk(fake_server).responses.create(model="fake/m", tools=[WEATHER_TOOL], input=[
        {"role": "user", "content": "Oslo and Rome?"},
        {"type": "function_call", "call_id": "a", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call", "call_id": "b", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "a", "output": "2C"},
        {"type": "function_call_output", "call_id": "b", "output": "20C"},
    ])
    roles = [(m["role"], m.get("tool_call_id")) for m in upstream.requests[0]["messages"]]
    assert roles == [("user", None), ("assistant", None), ("tool", "a"), ("assistant", None), ("tool", "b")]


def test_tool_choice_is_echoed_and_sent_in_chat_form(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(tool_calls_reply([("call_1", "get_weather", '{"city": "Oslo"}')]))
    response = sdk(fake_server).responses.create(
        model="fake/m", input="Oslo?", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "get_weather"}
    )
    assert upstream.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert response.tool_choice.type == "function"  # type: ignore[union-attr]


def test_unknown_call_id_in_function_call_output_is_a_400(fake_server: RunningServer) -> None:
    import openai
    import pytest

    with pytest.raises(openai.BadRequestError) as caught:
        sdk(fake_server).responses.create(
            model="fake/m", input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}]
        )
    assert caught.value.body["param"] == "input[0].call_id"  # type: ignore[index]
