"""The recorded conversation scenarios (reference recordings of the seed system's
`test_conversation_responses.py`), replayed through `conversation=` turns with the same client
calls that produced them. Replay is strict: a request that matches no recording fails the turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from riposte.inference.scope import REPLAY_SCOPE_HEADER
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import REFERENCE_RECORDINGS
from tests.integration.sdk import stream_events

SCOPE = "tests/integration/responses/test_conversation_responses.py::TestConversationResponses::"
MODEL = "openai/gpt-4o"


def scoped_client(server: RunningServer, test: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30,
                         default_headers={REPLAY_SCOPE_HEADER: SCOPE + test})


def recorded_reply(test: str, last_user_text: str) -> str:
    """The text the recording of `test` answered to a request ending with `last_user_text`."""
    for path in sorted(Path(REFERENCE_RECORDINGS).glob("*.json")):
        data = orjson.loads(path.read_bytes())
        if data.get("test_id") != SCOPE + test:
            continue
        last = data["request"]["body"]["messages"][-1]["content"]
        if last == last_user_text:
            chunks = data["response"]["body"]
            return "".join(choice["delta"].get("content") or ""
                           for chunk in chunks for choice in chunk["__data__"].get("choices") or [])
    raise AssertionError(f"no recording of {test} ends with {last_user_text!r}")


def roles(items: Any) -> list[str]:
    return [item.role for item in items.data if item.type == "message"]


def test_basic_workflow(reference_server: RunningServer) -> None:
    test = "test_conversation_basic_workflow[txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)
    conversation = client.conversations.create(metadata={"topic": "test"})

    response = client.responses.create(model=MODEL, conversation=conversation.id,
                                       input=[{"role": "user", "content": "What are the 5 Ds of dodgeball?"}])

    assert response.output_text == recorded_reply(test, "What are the 5 Ds of dodgeball?")
    assert roles(client.conversations.items.list(conversation.id, order="asc")) == ["user", "assistant"]


def test_multi_turn_and_streaming(reference_server: RunningServer) -> None:
    test = "test_conversation_multi_turn_and_streaming[txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)
    conversation = client.conversations.create()

    first = client.responses.create(model=MODEL, input=[{"role": "user", "content": "Say hello"}],
                                    conversation=conversation.id)
    # The second turn's recorded request carries the first turn as history: it only replays if
    # the conversation's items come back as exactly those messages.
    events = stream_events(reference_server, headers={REPLAY_SCOPE_HEADER: SCOPE + test}, model=MODEL,
                           input=[{"role": "user", "content": "Say goodbye"}], conversation=conversation.id)

    assert_valid_stream(events)
    final = events[-1].response
    assert final.status == "completed"
    assert first.output_text == recorded_reply(test, "Say hello")
    assert final.output_text == recorded_reply(test, "Say goodbye")
    assert final.conversation is not None and final.conversation.id == conversation.id
    items = client.conversations.items.list(conversation.id, order="asc")
    assert roles(items) == ["user", "assistant", "user", "assistant"]
    assert [i.id for i in items.data][1::2] == [first.output[0].id, final.output[0].id]


def test_context_loading(reference_server: RunningServer) -> None:
    test = "test_conversation_context_loading[txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)
    conversation = client.conversations.create(items=[
        {"type": "message", "role": "user", "content": "My name is Alice"},
        {"type": "message", "role": "assistant", "content": "Hello Alice!"},
    ])

    response = client.responses.create(model=MODEL, input=[{"role": "user", "content": "What's my name?"}],
                                       conversation=conversation.id)

    assert response.output_text == recorded_reply(test, "What's my name?")
    assert "alice" in response.output_text.lower()


def test_error_handling(reference_server: RunningServer) -> None:
    test = "test_conversation_error_handling[txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)
    hello = [{"role": "user", "content": "Hello"}]

    with pytest.raises(openai.BadRequestError) as invalid:
        client.responses.create(model=MODEL, input=hello, conversation="invalid_id")
    assert "conv_" in str(invalid.value)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=MODEL, input=hello, conversation="conv_nonexistent123")
    assert "not found" in str(missing.value).lower()
    response = client.responses.create(model=MODEL, input=[{"role": "user", "content": "First response"}])
    assert response.output_text == recorded_reply(test, "First response")
    with pytest.raises(openai.BadRequestError) as exclusive:
        client.responses.create(model=MODEL, input=hello, conversation="conv_test123", previous_response_id=response.id)
    assert "mutually exclusive" in str(exclusive.value).lower()


def test_backward_compatibility(reference_server: RunningServer) -> None:
    test = "test_conversation_backward_compatibility[txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)

    response = client.responses.create(model=MODEL, input=[{"role": "user", "content": "Hello world"}])

    assert response.output_text == recorded_reply(test, "Hello world")
    assert response.conversation is None


def test_compat_client(reference_server: RunningServer) -> None:
    test = "test_conversation_compat_client[openai_client-txt=openai/gpt-4o]"
    client = scoped_client(reference_server, test)
    conversation = client.conversations.create()

    response = client.responses.create(model=MODEL, input="Tell me a joke", conversation=conversation.id)

    assert response.output_text == recorded_reply(test, "Tell me a joke")
    assert len(client.conversations.items.list(conversation.id).data) == 2
