"""The scripted fake upstream must speak Chat Completions exactly as the official SDK expects,
otherwise integration tests built on it would prove nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.fakes.scripted_upstream import (
    EMBEDDING_DIMENSIONS,
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

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[ScriptedUpstream]:
    # One server for the module keeps the suite fast; `up` resets it per test.
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture
def up(shared_upstream: ScriptedUpstream) -> ScriptedUpstream:
    shared_upstream.reset()
    return shared_upstream


@pytest.fixture
def client(up: ScriptedUpstream) -> Iterator[openai.OpenAI]:
    # max_retries=0: a retried error would silently consume the next scripted reply.
    with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0) as sdk_client:
        yield sdk_client


def stream_chunks(client: openai.OpenAI, **extra: object) -> list[ChatCompletionChunk]:
    stream = client.chat.completions.create(model="m-1", messages=MESSAGES, stream=True, **extra)  # type: ignore[call-overload]
    return list(stream)


def raw_sse_payloads(up: ScriptedUpstream, body: dict[str, object]) -> list[str]:
    response = httpx.post(f"{up.base_url}/chat/completions", json=body, timeout=5)
    assert response.headers["content-type"].startswith("text/event-stream")
    return [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]


def content_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_text_reply_streams_word_pieces_then_usage(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    usage = make_usage(11, 4, cached_tokens=3, reasoning_tokens=0)
    up.enqueue(text_reply("Hello there, world!", usage=usage))

    chunks = stream_chunks(client, stream_options={"include_usage": True})

    first, *middle, last_choice, usage_chunk = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == ["Hello ", "there, ", "world!"]
    assert last_choice.choices[0].finish_reason == "stop"
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.total_tokens == 15
    assert usage_chunk.usage.prompt_tokens_details is not None
    assert usage_chunk.usage.prompt_tokens_details.cached_tokens == 3
    assert {c.model for c in chunks} == {"m-1"} and len({c.id for c in chunks}) == 1
    assert up.requests == [
        {"model": "m-1", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    ]
    assert up.request_headers[0]["authorization"] == "Bearer x"
    assert up.wait_for_outcomes(1) == ["completed"] and up.pending == 0


def test_no_usage_chunk_unless_requested(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(text_reply("abc", usage=make_usage(1, 1), pieces=3, finish_reason="length"))
    chunks = stream_chunks(client)
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["a", "b", "c"]
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_every_raw_chunk_validates_as_sdk_model(up: ScriptedUpstream) -> None:
    up.enqueue(
        text_reply("x y", usage=make_usage(1, 2)),
        tool_calls_reply([("call_1", "f", '{"a": 1}')]),
        reasoning_reply("think", "answer", field="reasoning"),
        refusal_reply("no"),
    )
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    for _ in range(4):
        *payloads, done = raw_sse_payloads(up, body)
        assert done == "[DONE]"
        # model_validate (unlike the SDK's lenient parsing) rejects a malformed chunk.
        for payload in payloads:
            ChatCompletionChunk.model_validate(json.loads(payload))


def test_parallel_tool_calls_stream_like_openai(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    arguments = '{"city": "Paris", "unit": "celsius"}'
    up.enqueue(tool_calls_reply([("call_a", "get_weather", arguments), ("call_b", "get_time", "{}")]))

    chunks = stream_chunks(client)

    calls: dict[int, dict[str, str]] = {}
    fragments: dict[int, int] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.function is not None
            if call.id is not None:  # header delta: id, type, name, empty arguments
                assert call.type == "function" and call.function.arguments == ""
                calls[call.index] = {"id": call.id, "name": call.function.name or "", "arguments": ""}
            else:
                calls[call.index]["arguments"] += call.function.arguments or ""
                fragments[call.index] = fragments.get(call.index, 0) + 1
    assert calls == {
        0: {"id": "call_a", "name": "get_weather", "arguments": arguments},
        1: {"id": "call_b", "name": "get_time", "arguments": "{}"},
    }
    assert min(fragments.values()) >= 2
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_reply_uses_the_requested_field(up: ScriptedUpstream, client: openai.OpenAI, field: str) -> None:
    up.enqueue(reasoning_reply("Let me think.", "42", field=field))  # type: ignore[arg-type]
    chunks = stream_chunks(client)
    # The SDK keeps unknown delta fields as pydantic extras.
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get(field) or "" for c in chunks)
    assert reasoning == "Let me think."
    assert content_of(chunks) == "42"


def test_refusal_reply(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(refusal_reply("I can't help with that."))
    chunks = stream_chunks(client)
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks) == "I can't help with that."
    assert content_of(chunks) == ""
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_non_streaming_request_gets_an_aggregated_completion(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(
        text_reply("Hi you", usage=make_usage(2, 2)),
        tool_calls_reply([("call_1", "f", '{"x": [1, 2]}')], text="Calling."),
        reasoning_reply("hmm", "ok"),
    )
    text = client.chat.completions.create(model="m", messages=MESSAGES)
    tools = client.chat.completions.create(model="m", messages=MESSAGES)
    reasoning = client.chat.completions.create(model="m", messages=MESSAGES)

    assert isinstance(text, ChatCompletion)
    assert text.choices[0].message.content == "Hi you" and text.usage is not None
    message = tools.choices[0].message
    assert message.content == "Calling." and tools.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and message.tool_calls[0].id == "call_1"
    assert message.tool_calls[0].function.arguments == '{"x": [1, 2]}'  # type: ignore[union-attr]
    assert (reasoning.choices[0].message.model_extra or {})["reasoning_content"] == "hmm"


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (503, openai.InternalServerError)],
)
def test_error_reply_raises_status_error(
    up: ScriptedUpstream, client: openai.OpenAI, status: int, exception: type[openai.APIStatusError]
) -> None:
    up.enqueue(error_reply(status, "scripted failure", code="boom"))
    with pytest.raises(exception) as caught:
        stream_chunks(client)
    assert caught.value.status_code == status
    assert caught.value.code == "boom" and caught.value.message.endswith("scripted failure")


def test_empty_queue_answers_500_envelope(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        stream_chunks(client)
    assert caught.value.body == {
        "message": "no scripted reply left",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert len(up.requests) == 1  # still recorded, so a test can see the unexpected call


def test_dropped_reply_breaks_the_stream_midway(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(dropped_reply("one two three four", after_chunks=2))
    received: list[ChatCompletionChunk] = []
    # openai 3.x reads through httpx2 and wraps its RemoteProtocolError as APIConnectionError.
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert content_of(received) == "one "
    assert up.wait_for_outcomes(1) == ["dropped"] and up.disconnects == 0


def test_dropped_non_streaming_reply_truncates_the_body(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(dropped_reply("one two", after_chunks=1))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=MESSAGES)


def test_slow_reply_reports_a_client_hanging_up(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    up.enqueue(slow_reply("a b c d e f", delay_s=0.1, pieces=6))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    assert up.wait_for_disconnect(timeout=3)
    assert up.disconnects == 1 and up.stream_outcomes == ["disconnected"]


async def test_async_client_and_async_disconnect_wait(up: ScriptedUpstream) -> None:
    up.enqueue(text_reply("fast one"), slow_reply("x y z", delay_s=0.2, pieces=3))
    async with openai.AsyncOpenAI(base_url=up.base_url, api_key="x", max_retries=0) as client:
        fast = [c async for c in await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
        assert "".join(c.choices[0].delta.content or "" for c in fast) == "fast one"

        slow = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        await slow.__anext__()
        await slow.close()
        assert await up.wait_for_disconnect_async(timeout=3)
    assert up.wait_for_outcomes(2) == ["completed", "disconnected"]


def test_models_and_embeddings(up: ScriptedUpstream, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["fake-model"]

    # The SDK asks for base64 by default; plain floats must decode to the same vectors.
    default = client.embeddings.create(model="e", input=["alpha", "beta"])
    floats = client.embeddings.create(model="e", input="alpha", encoding_format="float")

    assert [d.index for d in default.data] == [0, 1]
    assert all(len(d.embedding) == EMBEDDING_DIMENSIONS for d in default.data)
    assert default.data[0].embedding == floats.data[0].embedding
    assert default.data[0].embedding != default.data[1].embedding
    assert [r["input"] for r in up.embedding_requests] == [["alpha", "beta"], "alpha"]
    assert up.requests == []


def test_start_stop_frees_the_port() -> None:
    upstream = ScriptedUpstream().start()
    port = upstream.port
    assert httpx.get(f"{upstream.base_url}/models").status_code == 200
    upstream.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")
