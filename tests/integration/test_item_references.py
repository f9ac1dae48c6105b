"""`item_reference` input items resolve against stored items by id: a stored response's outputs
and its own inputs, and conversation items. An unknown id is a 400 naming the reference.
Both storage backends."""

from __future__ import annotations

import httpx

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import sdk, strict_create

TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]


def ref(item_id: str) -> dict[str, str]:
    return {"type": "item_reference", "id": item_id}


def test_a_reference_to_an_output_message_replays_it(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("Saturn."), text_reply("SATURN."))
    first = strict_create(fake_server, model="fake/m", input="Ringed planet?")

    second = strict_create(fake_server, model="fake/m", input=[
        {"role": "user", "content": "Ringed planet?"}, ref(first.output[0].id),
        {"role": "user", "content": "In capitals."}])

    assert second.output_text == "SATURN."
    messages = upstream.requests[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "text", "text": "Saturn."}]
    listed = sdk(fake_server).responses.input_items.list(second.id, order="asc").data
    assert listed[1].id == first.output[0].id and listed[1].type == "message"


def test_references_to_a_function_call_and_a_stored_input(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("c1", "lookup", "{}")]), text_reply("Done."))
    first = strict_create(fake_server, model="fake/m", input="Look it up.", tools=TOOLS)
    user_item = sdk(fake_server).responses.input_items.list(first.id).data[0]

    strict_create(fake_server, model="fake/m", tools=TOOLS, input=[
        ref(user_item.id), ref(first.output[0].id), {"type": "function_call_output", "call_id": "c1", "output": "42"}])

    messages = upstream.requests[1]["messages"]
    assert messages[0]["role"] == "user"
    assert messages[1]["tool_calls"][0]["id"] == "c1"
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "42"}


def test_a_reference_to_a_conversation_item(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[{"role": "user", "content": "My name is Ada."}])
    item = client.conversations.items.list(conversation.id).data[0]
    upstream.enqueue(text_reply("Ada."))

    strict_create(fake_server, model="fake/m", input=[ref(item.id), {"role": "user", "content": "My name?"}])

    assert upstream.requests[0]["messages"][0]["content"] == [{"type": "text", "text": "My name is Ada."}]


def test_an_unknown_reference_is_a_400_naming_it(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    reply = httpx.post(f"{fake_server.base_url}/responses", timeout=30, json={
        "model": "fake/m", "input": [{"role": "user", "content": "hi"}, ref("msg_nope")]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[1].id"
    assert "msg_nope" in reply.json()["error"]["message"]
    assert upstream.requests == []


def test_items_of_a_deleted_response_no_longer_resolve(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Saturn."))
    first = strict_create(fake_server, model="fake/m", input="Ringed planet?")
    sdk(fake_server).responses.delete(first.id)

    reply = httpx.post(f"{fake_server.base_url}/responses", timeout=30, json={
        "model": "fake/m", "input": [ref(first.output[0].id)]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].id"


def test_items_of_an_unstored_response_do_not_resolve(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Saturn."))
    first = strict_create(fake_server, model="fake/m", input="Ringed planet?", store=False)
    reply = httpx.post(f"{fake_server.base_url}/responses", timeout=30, json={
        "model": "fake/m", "input": [ref(first.output[0].id)]})
    assert reply.status_code == 400


def test_an_item_already_in_the_previous_response_is_a_400_not_a_second_copy(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Saturn."))
    first = strict_create(fake_server, model="fake/m", input="Ringed planet?")

    for again in (ref(first.output[0].id), first.output[0].model_dump(exclude_none=True)):
        response = httpx.post(f"{fake_server.base_url}/responses", json={
            "model": "fake/m", "previous_response_id": first.id,
            "input": [again, {"role": "user", "content": "In capitals."}]})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "input[0]"
        assert first.output[0].id in response.json()["error"]["message"]
    assert len(upstream.requests) == 1


def test_a_function_call_left_unanswered_on_a_chain_is_a_400(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("c1", "lookup", "{}")]), text_reply("Done."))
    first = strict_create(fake_server, model="fake/m", input="Look it up.", tools=TOOLS)

    skipped = httpx.post(f"{fake_server.base_url}/responses", json={
        "model": "fake/m", "previous_response_id": first.id, "tools": TOOLS, "input": "Never mind."})
    answered = strict_create(fake_server, model="fake/m", previous_response_id=first.id, tools=TOOLS,
                             input=[{"type": "function_call_output", "call_id": "c1", "output": "42"}])

    assert skipped.status_code == 400
    assert skipped.json()["error"] | {"message": None} == {
        "message": None, "type": "invalid_request_error", "param": "input", "code": "missing_tool_output"}
    assert "c1" in skipped.json()["error"]["message"]
    assert answered.output_text == "Done." and len(upstream.requests) == 2
