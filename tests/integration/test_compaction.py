"""Compaction over a scripted upstream: `POST /v1/responses/compact` through the SDK's
`responses.compact`, server-side compaction through `context_management` (streaming and not),
compaction items given back as input, and the summary reaching the model in later turns, over
`previous_response_id`, conversations and `store: false` chains. Both storage backends."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response
from openai.types.responses.compacted_response import CompactedResponse
from openai.types.responses.response_compaction_item import ResponseCompactionItem
from openai.types.responses.response_usage import ResponseUsage

from riposte.engine.compaction_items import SUMMARY_HEADER
from riposte.engine.summarize import SUMMARY_PROMPT
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, make_usage, text_reply
from tests.integration.context_servers import CONTEXT_SETTINGS
from tests.integration.module_servers import module_upstream, server, upstream
from tests.integration.sdk import sdk, stream_events

__all__ = ["module_upstream", "server", "upstream"]  # fixtures
SERVER_SETTINGS = CONTEXT_SETTINGS

SUMMARY = "The user is planning a trip to Lisbon in May and prefers trains."


def history(turns: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for turn in range(turns):
        items.append({"role": "user", "content": f"Question {turn}: what about day {turn} of the trip?"})
        items.append({"role": "assistant", "content": f"Answer {turn}: on day {turn} take the morning train."})
    return items


def texts(request: dict[str, Any]) -> str:
    return "\n".join(str(message.get("content")) for message in request["messages"])


def is_summary_request(request: dict[str, Any]) -> bool:
    return request["messages"][0] == {"role": "system", "content": SUMMARY_PROMPT}


def test_compact_returns_the_kept_exchange_and_a_sealed_summary(server: RunningServer,
                                                                 upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply(SUMMARY, usage=make_usage(120, 14)))
    items = [*history(5), {"role": "user", "content": "And the last day?"}]

    compacted = client.responses.compact(model="fake/m", input=items, instructions="Be brief.")  # type: ignore[arg-type]

    # Kept user messages are outside the SDK's output union (the hosted API returns them too), so
    # the compaction item and the usage are what can be checked strictly, and dumping a kept
    # message would make pydantic warn that its input_text is not an output_text.
    ResponseCompactionItem.model_validate(compacted.output[-1].model_dump(), strict=True)
    ResponseUsage.model_validate(compacted.usage.model_dump(), strict=True)
    assert isinstance(compacted, CompactedResponse) and compacted.id.startswith("cmpr_")
    assert compacted.object == "response.compaction"
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    assert compacted.output[0].model_dump(warnings=False)["content"][0]["text"] == "And the last day?"
    sealed = compacted.output[-1].model_dump()["encrypted_content"]
    assert SUMMARY not in sealed and "Lisbon" not in sealed
    assert compacted.usage.input_tokens == 120 and compacted.usage.output_tokens == 14
    summary_call = upstream.requests[0]
    assert is_summary_request(summary_call) and "Answer 3: on day 3" in texts(summary_call)
    assert summary_call["max_completion_tokens"] == 64
    assert "Be brief." in texts(summary_call)

    # The compacted window, given back with a new message, reaches the model as the summary.
    upstream.enqueue(text_reply("Take the 9:00 train."))
    window = [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
    continued = client.responses.create(model="fake/m", input=[*window, {"role": "user", "content": "Which train?"}])
    sent = upstream.requests[1]["messages"]
    counted = client.responses.input_tokens.count(model="fake/m",
                                                  input=[*window, {"role": "user", "content": "Which train?"}])
    assert continued.usage is not None and counted.input_tokens == continued.usage.input_tokens
    assert sent[0] == {"role": "user", "content": f"{SUMMARY_HEADER}\n\n{SUMMARY}"}
    assert [m["content"] for m in sent[1:]] == [[{"type": "text", "text": "And the last day?"}], "Which train?"]


def test_compact_reads_a_response_chain(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply("Noted: Lisbon in May."))
    first = client.responses.create(model="fake/m", input="I am going to Lisbon in May.")
    upstream.enqueue(text_reply(SUMMARY))

    compacted = client.responses.compact(model="fake/m", previous_response_id=first.id)

    assert "Lisbon in May" in texts(upstream.requests[1])
    kept = [item.model_dump(warnings=False) for item in compacted.output[:-1]]
    assert [item["type"] for item in kept] == ["message", "message"]
    assert kept[1]["content"][0]["text"] == "Noted: Lisbon in May."


def test_an_altered_or_foreign_compaction_item_is_a_400(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply(SUMMARY))
    compacted = client.responses.compact(model="fake/m", input="Plan my trip.")
    item = compacted.output[-1].model_dump(exclude_none=True)
    blob = item["encrypted_content"]
    altered = {**item, "encrypted_content": blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")}
    for bad in (altered, {"type": "compaction", "encrypted_content": "not a blob"}):
        reply = httpx.post(f"{server.base_url}/responses", timeout=30,
                           json={"model": "fake/m", "input": [{"role": "user", "content": "hi"}, bad]})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "input[1].encrypted_content"
        assert reply.json()["error"]["code"] == "invalid_encrypted_content"
    assert len(upstream.requests) == 1


def test_a_reasoning_blob_does_not_pass_as_a_compaction(server: RunningServer, upstream: ScriptedUpstream) -> None:
    from tests.fakes.scripted_upstream import reasoning_reply

    client = sdk(server)
    upstream.enqueue(reasoning_reply("thinking hard", "Done."))
    response = client.responses.create(model="fake/m", input="hi", store=False,
                                       include=["reasoning.encrypted_content"])
    reasoning_blob = response.output[0].model_dump()["encrypted_content"]
    reply = httpx.post(f"{server.base_url}/responses", timeout=30, json={
        "model": "fake/m", "input": [{"type": "compaction", "encrypted_content": reasoning_blob}]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "input[0].encrypted_content"


@pytest.mark.parametrize("stream", [False, True])
def test_compact_threshold_compacts_before_the_model_call(server: RunningServer, upstream: ScriptedUpstream,
                                                          stream: bool) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply(SUMMARY, usage=make_usage(300, 15)))
    upstream.enqueue(text_reply("Take the train.", usage=make_usage(60, 4)))
    params: dict[str, Any] = {
        "model": "fake/m", "input": [*history(8), {"role": "user", "content": "What now?"}],
        "instructions": "Be brief.", "context_management": [{"type": "compaction", "compact_threshold": 200}],
    }
    if stream:
        events = stream_events(server, **params)
        assert_valid_stream(events)
        kinds = [(e.type, getattr(e, "item", None) and e.item.type) for e in events]
        assert kinds[2:4] == [("response.output_item.added", "compaction"), ("response.output_item.done", "compaction")]
        response = events[-1].response
    else:
        response = client.responses.create(**params)

    Response.model_validate(response.model_dump())
    assert [item.type for item in response.output] == ["compaction", "message"]
    assert response.usage is not None and response.usage.input_tokens == 360 and response.usage.output_tokens == 19
    assert is_summary_request(upstream.requests[0])
    turn_call = upstream.requests[1]["messages"]
    assert turn_call == [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": f"{SUMMARY_HEADER}\n\n{SUMMARY}"},
                         {"role": "user", "content": "What now?"}]

    # The chain goes on from the compacted window.
    upstream.enqueue(text_reply("From Santa Apolonia."))
    client.responses.create(model="fake/m", input="From where?", previous_response_id=response.id)
    later = upstream.requests[2]["messages"]
    assert SUMMARY in texts(upstream.requests[2]) and "Answer 3" not in texts(upstream.requests[2])
    assert later[-1] == {"role": "user", "content": "From where?"}


def test_below_the_threshold_nothing_changes(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply("Hi."))
    response = client.responses.create(model="fake/m", input="Hello",
                                       context_management=[{"type": "compaction", "compact_threshold": 5000}])
    assert [item.type for item in response.output] == ["message"]
    assert upstream.requests[0]["messages"] == [{"role": "user", "content": "Hello"}]


def test_store_false_chain_carries_the_compaction_item(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply(SUMMARY))
    upstream.enqueue(text_reply("Sure."))
    items: list[Any] = [*history(8), {"role": "user", "content": "Book it."}]
    first = client.responses.create(model="fake/m", input=items, store=False,
                                    context_management=[{"type": "compaction", "compact_threshold": 150}])
    items += [item.model_dump(exclude_none=True) for item in first.output]
    items.append({"role": "user", "content": "Thanks!"})
    upstream.enqueue(text_reply("You are welcome."))

    client.responses.create(model="fake/m", input=items, store=False)

    assert [m["content"] for m in upstream.requests[2]["messages"]] == [
        f"{SUMMARY_HEADER}\n\n{SUMMARY}", "Book it.", [{"type": "text", "text": "Sure."}], "Thanks!"]


def test_a_conversation_keeps_the_compaction(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    conversation = client.conversations.create(items=history(8))  # type: ignore[arg-type]
    upstream.enqueue(text_reply(SUMMARY))
    upstream.enqueue(text_reply("Booked."))
    first = client.responses.create(model="fake/m", input="Book it.", conversation=conversation.id,
                                    context_management=[{"type": "compaction", "compact_threshold": 150}])
    assert first.output[0].type == "compaction"
    stored = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert stored[-2:] == ["compaction", "message"]
    upstream.enqueue(text_reply("Bye."))

    client.responses.create(model="fake/m", input="Thanks!", conversation=conversation.id)

    assert [m["content"] for m in upstream.requests[2]["messages"]] == [
        f"{SUMMARY_HEADER}\n\n{SUMMARY}", [{"type": "text", "text": "Book it."}],
        [{"type": "text", "text": "Booked."}], "Thanks!"]


@pytest.mark.parametrize(("entry", "param"), [
    ({"type": "truncate"}, "context_management[0].type"),
    ({"type": "compaction", "compact_threshold": 0}, "context_management[0].compact_threshold"),
    ({"type": "compaction", "compact_threshold": "many"}, "context_management[0].compact_threshold"),
    ({"type": "compaction", "extra": 1}, "context_management[0].extra"),
])
def test_bad_context_management_names_the_param(server: RunningServer, upstream: ScriptedUpstream,
                                                entry: dict[str, Any], param: str) -> None:
    reply = httpx.post(f"{server.base_url}/responses", timeout=30,
                       json={"model": "fake/m", "input": "hi", "context_management": [entry]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param
    assert upstream.requests == []


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "fake/m", "input": "hi", "unknown": 1}, "unknown"),
    ({"model": "fake/m", "input": "hi", "prompt_cache_options": {"mode": "explicit"}}, "prompt_cache_options"),
    ({"model": "fake/m", "previous_response_id": "resp_missing"}, "previous_response_id"),
    ({"model": "fake/m", "conversation": "conv_missing"}, "conversation"),
    ({"model": "fake/m"}, "input"),
    ({"input": "hi"}, "model"),
])
def test_bad_compact_requests_name_the_param(server: RunningServer, upstream: ScriptedUpstream,
                                             body: dict[str, Any], param: str) -> None:
    reply = httpx.post(f"{server.base_url}/responses/compact", json=body, timeout=30)
    assert reply.status_code in (400, 404), reply.text
    assert reply.json()["error"]["param"] == param
    assert upstream.requests == []


def test_a_failed_summary_is_the_upstreams_error(server: RunningServer, upstream: ScriptedUpstream) -> None:
    from tests.fakes.scripted_upstream import error_reply

    upstream.enqueue(error_reply(503, "overloaded"))
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(server).responses.compact(model="fake/m", input="Plan my trip.")
    assert raised.value.status_code >= 500


def test_a_background_turn_compacts_once_in_its_worker(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply(SUMMARY), text_reply("Booked in the background."))
    created = client.responses.create(model="fake/m", input=[*history(8), {"role": "user", "content": "Book it."}],
                                      background=True,
                                      context_management=[{"type": "compaction", "compact_threshold": 150}])
    assert created.status == "queued" and created.output == []
    deadline = time.monotonic() + 30
    while (finished := client.responses.retrieve(created.id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the background turn did not end"
        time.sleep(0.05)

    assert finished.status == "completed"
    assert [item.type for item in finished.output] == ["compaction", "message"]
    assert [is_summary_request(request) for request in upstream.requests] == [True, False]
