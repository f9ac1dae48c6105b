"""`include: ["reasoning.encrypted_content"]` with `store: false`: the client carries the sealed
reasoning, and it reaches the upstream again byte for byte. Altered or foreign blobs are a 400
naming the item. Also `client_metadata`, the other field stateless clients (Codex) send."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from openai.types.responses import Response

from riposte.config import ProviderConfig
from riposte.sealing import new_key
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply
from tests.integration.sdk import sdk, stream_events, strict_create

INCLUDE = ["reasoning.encrypted_content"]
# Whitespace, unicode and markup: nothing in the text may be normalised on the way round.
REASONING = "  The user wants 2+2.\n\tArithmetic: 2 + 2 = 4 ✓ <think>not a tag</think>  \n"


def first_turn(server: RunningServer, upstream: ScriptedUpstream) -> Response:
    upstream.enqueue(reasoning_reply(REASONING, "4"))
    return strict_create(server, model="fake/reasoner", input="What is 2+2?", store=False, include=INCLUDE)


def next_input(first: Response) -> list[dict[str, Any]]:
    """What a stateless client sends next: the history, with the reasoning item as it came
    back minus its readable text (OpenAI's own items carry only the sealed blob)."""
    items: list[dict[str, Any]] = [{"role": "user", "content": "What is 2+2?"}]
    for item in first.output:
        dumped = item.model_dump(exclude_none=True)
        if dumped["type"] == "reasoning":
            dumped["content"] = []
        items.append(dumped)
    return [*items, {"role": "user", "content": "And doubled?"}]


def post(server: RunningServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses", json=body, timeout=30)


def test_reasoning_comes_back_sealed_and_reaches_the_upstream_unchanged(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    first = first_turn(fake_server, upstream)
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert REASONING not in reasoning.encrypted_content

    upstream.enqueue(text_reply("8"))
    second = strict_create(fake_server, model="fake/reasoner", input=next_input(first), store=False)

    assert second.output_text == "8"
    assistant = upstream.requests[1]["messages"][1]
    assert assistant["role"] == "assistant" and assistant["reasoning_content"] == REASONING


def test_without_the_include_no_blob_is_returned(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(reasoning_reply(REASONING, "4"))
    response = strict_create(fake_server, model="fake/reasoner", input="What is 2+2?", store=False)
    assert response.output[0].type == "reasoning" and response.output[0].encrypted_content is None


def test_retrieval_seals_the_reasoning_when_its_include_asks_and_checks_the_include(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply(REASONING, "4"), text_reply("8"))
    stored = strict_create(fake_server, model="fake/reasoner", input="What is 2+2?")
    assert stored.output[0].encrypted_content is None

    client = sdk(fake_server)
    plain = client.responses.retrieve(stored.id)
    sealed = client.responses.retrieve(stored.id, include=INCLUDE)
    bogus = httpx.get(f"{fake_server.base_url}/responses/{stored.id}", params={"include[]": "bogus"})

    assert plain.output[0].encrypted_content is None
    assert sealed.output[0].type == "reasoning" and sealed.output[0].encrypted_content
    assert (bogus.status_code, bogus.json()["error"]["param"]) == (400, "include[0]")
    # The blob opens like one handed out on create: a stateless follow-up sends the reasoning back.
    follow_up = next_input(sealed)
    second = strict_create(fake_server, model="fake/reasoner", input=follow_up, store=False)
    assert second.output_text == "8"
    assert upstream.requests[1]["messages"][1]["reasoning_content"] == REASONING


def test_the_streamed_reasoning_item_carries_the_blob(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(reasoning_reply(REASONING, "4"))
    events = stream_events(fake_server, model="fake/reasoner", input="What is 2+2?", store=False, include=INCLUDE)

    assert_valid_stream(events)
    done = next(e for e in events if e.type == "response.output_item.done" and e.item.type == "reasoning")
    assert done.item.encrypted_content
    assert events[-1].response.output[0].encrypted_content == done.item.encrypted_content


def test_an_altered_blob_is_a_400_naming_the_item(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    items = next_input(first_turn(fake_server, upstream))
    raw = bytearray(base64.b64decode(items[1]["encrypted_content"]))
    raw[30] ^= 0x40
    items[1]["encrypted_content"] = base64.b64encode(bytes(raw)).decode()

    reply = post(fake_server, {"model": "fake/reasoner", "input": items, "store": False})

    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "input[1].encrypted_content"
    assert items[1]["id"] in error["message"]
    assert len(upstream.requests) == 1


def test_a_blob_from_another_server_is_a_400(
    make_server: ServerFactory, upstream: ScriptedUpstream, tmp_path: Any
) -> None:
    providers = [ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")]
    ours = make_server(providers=providers, sealing_keys=[new_key().as_text()])
    theirs = make_server(providers=providers, sealing_keys=[new_key().as_text()])
    items = next_input(first_turn(theirs, upstream))

    reply = post(ours, {"model": "fake/reasoner", "input": items, "store": False})

    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[1].encrypted_content"
    assert "does not hold" in reply.json()["error"]["message"]


def test_a_rotated_out_key_still_opens_while_it_is_kept(
    make_server: ServerFactory, upstream: ScriptedUpstream
) -> None:
    providers = [ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")]
    old, new = new_key().as_text(), new_key().as_text()
    before = make_server(providers=providers, sealing_keys=[old])
    after = make_server(providers=providers, sealing_keys=[new, old])
    items = next_input(first_turn(before, upstream))

    upstream.enqueue(text_reply("8"))
    assert strict_create(after, model="fake/reasoner", input=items, store=False).output_text == "8"
    assert upstream.requests[1]["messages"][1]["reasoning_content"] == REASONING


@pytest.mark.parametrize("stream", [False, True])
def test_client_metadata_is_stored_and_echoed(
    fake_server: RunningServer, upstream: ScriptedUpstream, stream: bool
) -> None:
    metadata = {"x-codex-installation-id": "inst-1", "session_id": "0199-abc"}
    upstream.enqueue(text_reply("hi"))
    if stream:
        events = stream_events(fake_server, model="fake/m", input="hi", client_metadata=metadata)
        assert_valid_stream(events)
        echoed = events[-1].response
    else:
        echoed = strict_create(fake_server, model="fake/m", input="hi", client_metadata=metadata)

    assert echoed.model_extra is not None and echoed.model_extra["client_metadata"] == metadata
    stored = sdk(fake_server).responses.retrieve(echoed.id)
    assert stored.model_extra is not None and stored.model_extra["client_metadata"] == metadata
    assert "client_metadata" not in upstream.requests[0]
