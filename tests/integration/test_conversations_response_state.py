"""Multi-turn state without a conversation: `previous_response_id` chains, `store: false`,
deleted responses, and the chained `input_items` with `include`. Both backends."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import sdk

LOOKUP_TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}


def test_a_chain_of_turns_replays_the_exact_history_without_inheriting_instructions(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    upstream.enqueue(*(text_reply(f"answer {n}") for n in range(4)))
    instructions = {0: "Be terse.", 2: "Be kind."}
    previous: str | None = None
    expected: list[dict[str, Any]] = []

    for n in range(4):
        response = client.responses.create(model="fake/m", input=f"question {n}", previous_response_id=previous,
                                           instructions=instructions.get(n))
        expected.append({"role": "user", "content": f"question {n}"})
        system = [{"role": "system", "content": instructions[n]}] if n in instructions else []
        assert upstream.requests[n]["messages"] == [*system, *expected]
        expected.append({"role": "assistant", "content": f"answer {n}"})
        previous = response.id


def test_function_call_pairs_survive_the_chain(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    upstream.enqueue(tool_calls_reply([("call_l", "lookup", "{}")]), text_reply("Found it."), text_reply("Sure."))

    first = client.responses.create(model="fake/m", input="Look it up", tools=[LOOKUP_TOOL])
    second = client.responses.create(model="fake/m", previous_response_id=first.id, tools=[LOOKUP_TOOL],
                                     input=[{"type": "function_call_output", "call_id": "call_l", "output": "42"}])
    client.responses.create(model="fake/m", previous_response_id=second.id, input="Thanks")

    call = {"id": "call_l", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    assert upstream.requests[2]["messages"] == [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_l", "content": "42"},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "Thanks"},
    ]


def test_chaining_from_a_deleted_response_is_previous_response_not_found(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    upstream.enqueue(text_reply("gone soon"))
    response = client.responses.create(model="fake/m", input="hi")
    client.responses.delete(response.id)

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="fake/m", input="again", previous_response_id=response.id)
    error: dict[str, Any] = raised.value.body  # type: ignore[assignment]
    assert (error["param"], error["code"]) == ("previous_response_id", "previous_response_not_found")


def test_a_store_false_response_cannot_be_retrieved_or_chained(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    upstream.enqueue(text_reply("not kept"))
    response = client.responses.create(model="fake/m", input="hi", store=False)

    for read in (client.responses.retrieve, client.responses.input_items.list):
        with pytest.raises(openai.NotFoundError):
            read(response.id)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="fake/m", input="again", previous_response_id=response.id)
    error: dict[str, Any] = raised.value.body  # type: ignore[assignment]
    assert (error["param"], error["code"]) == ("previous_response_id", "previous_response_not_found")
    assert "store=false" in error["message"]
    assert len(upstream.requests) == 1


def test_input_items_list_the_whole_chained_input_with_include(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    client = sdk(fake_server)
    upstream.enqueue(text_reply("a1"), text_reply("a2"))
    first = client.responses.create(model="fake/m", input="q1")
    second = client.responses.create(model="fake/m", input="q2", previous_response_id=first.id)

    listed = client.responses.input_items.list(second.id, order="asc")
    assert [(i.role, i.content[0].text) for i in listed.data] == [  # type: ignore[union-attr]
        ("user", "q1"), ("assistant", "a1"), ("user", "q2")]
    assert listed.data[1].id == first.output[0].id

    url = f"{fake_server.base_url}/responses/{second.id}/input_items"
    plain = httpx.get(url, params={"order": "asc"}).json()["data"][1]["content"][0]
    included = httpx.get(url, params={"order": "asc", "include[]": "message.output_text.logprobs"}).json()
    assert "logprobs" not in plain
    assert included["data"][1]["content"][0]["logprobs"] == []
    with_sdk = client.responses.input_items.list(second.id, include=["message.output_text.logprobs"])
    assert with_sdk.data[1].content[0].logprobs == []  # type: ignore[union-attr]
    bad = httpx.get(url, params={"include": "everything"})
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "include[0]")
