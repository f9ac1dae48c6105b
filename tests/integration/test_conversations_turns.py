"""Responses with `conversation=`: the whole conversation is the history, and a finished turn
appends its input and every output item, atomically and in a stable order. Both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import (
    ScriptedUpstream,
    error_reply,
    reasoning_reply,
    slow_reply,
    text_reply,
    tool_calls_reply,
)
from tests.integration.sdk import sdk, stream_events, strict_create

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def all_items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return list(client.conversations.items.list(conversation_id, order="asc", limit=100))


def test_a_turn_replays_every_item_not_just_the_first_page(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[user(f"m{n}") for n in range(20)])
    client.conversations.items.create(conversation.id, items=[user(f"m{n}") for n in range(20, 25)])
    upstream.enqueue(text_reply("I read all 25."))

    response = strict_create(fake_server, model="fake/m", input="How many?", conversation=conversation.id)

    sent = upstream.requests[0]["messages"]
    assert sent == [*({"role": "user", "content": [{"type": "text", "text": f"m{n}"}]} for n in range(25)),
                    {"role": "user", "content": "How many?"}]
    assert response.conversation is not None and response.conversation.id == conversation.id
    items = all_items(client, conversation.id)
    assert len(items) == 27
    assert items[-1].id == response.output[0].id and items[-1].content[0].text == "I read all 25."
    assert items[-2].content[0].text == "How many?"


def test_function_calls_and_outputs_are_appended_and_replayed(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[])
    upstream.enqueue(tool_calls_reply([("call_w", "get_weather", '{"city": "Oslo"}')]), text_reply("Rainy."))

    first = client.responses.create(model="fake/m", input="Weather?", tools=[WEATHER_TOOL],
                                    conversation={"id": conversation.id})
    second = client.responses.create(
        model="fake/m", tools=[WEATHER_TOOL], conversation=conversation.id,
        input=[{"type": "function_call_output", "call_id": "call_w", "output": "rain"}])

    assert second.output_text == "Rainy."
    call = {"id": "call_w", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    assert upstream.requests[1]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_w", "content": "rain"},
    ]
    items = all_items(client, conversation.id)
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message"]
    assert items[1].id == first.output[0].id and items[3].id == second.output[0].id


def test_a_reasoning_item_is_appended_and_rides_on_the_next_history(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create()
    upstream.enqueue(reasoning_reply("Think first.", "Answer."), text_reply("Again."))

    client.responses.create(model="fake/m", input="Q1", conversation=conversation.id)
    client.responses.create(model="fake/m", input="Q2", conversation=conversation.id)

    assert [i.type for i in all_items(client, conversation.id)][:3] == ["message", "reasoning", "message"]
    assert upstream.requests[1]["messages"][1] == {
        "role": "assistant", "content": [{"type": "text", "text": "Answer."}], "reasoning_content": "Think first."}


def test_a_streamed_turn_is_appended_before_its_terminal_event(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create()
    upstream.enqueue(text_reply("Streamed."))

    events = stream_events(fake_server, model="fake/m", input="Go", conversation=conversation.id)

    assert_valid_stream(events)
    final = events[-1].response
    assert final.conversation is not None and final.conversation.id == conversation.id
    assert [i.id for i in all_items(client, conversation.id)][1:] == [final.output[0].id]


def test_a_failed_turn_appends_nothing_and_can_be_retried(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[user("before")])
    upstream.enqueue(error_reply(500, "upstream broke"), text_reply("Fine now."))

    with pytest.raises(openai.APIStatusError):
        client.responses.create(model="fake/m", input="try", conversation=conversation.id)
    assert len(all_items(client, conversation.id)) == 1

    client.responses.create(model="fake/m", input="try", conversation=conversation.id)
    assert [i.content[0].text for i in all_items(client, conversation.id)] == ["before", "try", "Fine now."]


def test_an_incomplete_turn_is_appended(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create()
    upstream.enqueue(text_reply("Cut sh", finish_reason="length"))

    response = client.responses.create(model="fake/m", input="Long story", conversation=conversation.id)

    assert response.status == "incomplete"
    items = all_items(client, conversation.id)
    assert [(i.type, i.status) for i in items] == [("message", "completed"), ("message", "incomplete")]


def test_store_false_still_appends_to_the_conversation(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create()
    upstream.enqueue(text_reply("Kept in the conversation."))

    response = client.responses.create(model="fake/m", input="hi", conversation=conversation.id, store=False)

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert len(all_items(client, conversation.id)) == 2


def test_deleting_a_response_leaves_its_conversation_whole(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create()
    upstream.enqueue(text_reply("First answer."), text_reply("Second answer."))
    first = client.responses.create(model="fake/m", input="one", conversation=conversation.id)

    client.responses.delete(first.id)
    client.responses.create(model="fake/m", input="two", conversation=conversation.id)

    assert upstream.requests[1]["messages"][:2] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "First answer."}]}]
    assert [i.content[0].text for i in all_items(client, conversation.id)] == [
        "one", "First answer.", "two", "Second answer."]


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"conversation": "conv_abc", "previous_response_id": "resp_abc"}, 400, "conversation"),
        ({"conversation": "invalid_id"}, 400, "conversation"),
        ({"conversation": {"id": 7}}, 400, "conversation.id"),
        ({"conversation": "conv_" + "0" * 48}, 404, "conversation"),
    ],
)
def test_bad_conversation_params_are_rejected_before_any_upstream_call(
    fake_server: RunningServer, upstream: ScriptedUpstream, params: dict[str, Any], status: int, param: str
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(fake_server).responses.create(model="fake/m", input="hi", **params)
    assert (raised.value.status_code, raised.value.body["param"]) == (status, param)  # type: ignore[index]
    if "previous_response_id" in params:
        assert "mutually exclusive" in raised.value.message
    assert upstream.requests == []


def test_an_input_item_id_already_in_the_conversation_is_a_400(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[{"id": "msg_once", "role": "user", "content": "a"}])
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="fake/m", conversation=conversation.id,
                                input=[{"id": "msg_once", "type": "message", "role": "user", "content": "b"}])
    assert raised.value.body["param"] == "input[0].id"  # type: ignore[index]
    assert upstream.requests == []


async def test_twenty_concurrent_turns_lose_nothing_and_keep_each_turn_together(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    # Slow streams keep the turns in flight at the same time.
    upstream.enqueue(*(slow_reply(f"answer {n}", delay_s=0.02, pieces=3) for n in range(20)))
    async with openai.AsyncOpenAI(base_url=fake_server.base_url, api_key="x", max_retries=0, timeout=60) as client:
        conversation = await client.conversations.create()
        responses = await asyncio.gather(*(
            client.responses.create(model="fake/m", input=f"question {n}", conversation=conversation.id)
            for n in range(20)))

        listed = [item async for item in client.conversations.items.list(conversation.id, order="asc", limit=7)]
        newest_first = [item async for item in client.conversations.items.list(conversation.id, limit=100)]
        inputs = [(await client.responses.input_items.list(r.id)).data for r in responses]

    assert [i.id for i in newest_first] == [i.id for i in reversed(listed)]
    assert len(listed) == 40 and len({i.id for i in listed}) == 40
    position = {item.id: index for index, item in enumerate(listed)}
    for response, [input_item] in zip(responses, inputs, strict=True):
        [output_item] = response.output
        # Each turn's input is directly followed by its own output: turns never interleave.
        assert position[output_item.id] == position[input_item.id] + 1
