"""Context windows: `truncation: "auto"` drops the oldest messages (a call with its outputs, system
messages kept) so the input fits; `"disabled"` is a 400 `context_length_exceeded` before any
upstream call; and `POST /v1/responses/input_tokens` counts what the turn sends. Both backends."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from riposte.engine.usage import count_input_tokens
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.context_servers import CONTEXT_SETTINGS, WINDOW
from tests.integration.module_servers import module_upstream, server, upstream
from tests.integration.sdk import sdk

__all__ = ["module_upstream", "server", "upstream"]  # fixtures
SERVER_SETTINGS = CONTEXT_SETTINGS

TOOLS = [{"type": "function", "name": "lookup", "description": "Look a station up.",
          "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]


def long_agent_history(rounds: int) -> list[dict[str, Any]]:
    """Rounds of: a user question, a tool call, its (long) output, and an answer."""
    items: list[dict[str, Any]] = [{"role": "developer", "content": "Answer about trains only."}]
    for turn in range(rounds):
        items += [
            {"role": "user", "content": f"Where does train {turn} leave from?"},
            {"type": "function_call", "call_id": f"call_{turn}", "name": "lookup", "arguments": f'{{"q": "{turn}"}}'},
            {"type": "function_call_output", "call_id": f"call_{turn}",
             "output": f"Train {turn} leaves from platform {turn}. " * 12},
            {"role": "assistant", "content": f"From platform {turn}."},
        ]
    items.append({"role": "user", "content": "And the last one?"})
    return items


def assert_calls_keep_their_outputs(messages: list[dict[str, Any]]) -> None:
    open_calls: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in open_calls, f"a tool result lost its call: {message}"
            open_calls.discard(message["tool_call_id"])
        else:
            assert not open_calls, f"a call lost its output: {open_calls}"
        open_calls |= {call["id"] for call in message.get("tool_calls") or ()}


def test_truncation_auto_drops_the_oldest_rounds_whole(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    params: dict[str, Any] = {"model": "fake/small", "input": long_agent_history(6), "instructions": "Be brief.",
                              "tools": TOOLS, "truncation": "auto"}
    upstream.enqueue(text_reply("From platform 5."))  # no usage: Riposte counts the input itself

    response = client.responses.create(**params)

    sent = upstream.requests[0]
    messages = sent["messages"]
    assert messages[:2] == [{"role": "system", "content": "Be brief."},
                            {"role": "developer", "content": "Answer about trains only."}]
    assert messages[-1] == {"role": "user", "content": "And the last one?"}
    assert "Where does train 0 leave from?" not in str(messages)  # the oldest round went
    assert "Where does train 5 leave from?" in str(messages)  # the newest stayed
    assert_calls_keep_their_outputs(messages)
    assert response.usage is not None
    assert response.usage.input_tokens == count_input_tokens(messages, sent["tools"]) <= WINDOW
    counted = client.responses.input_tokens.count(**{k: v for k, v in params.items() if k != "model"},
                                                  model="fake/small")
    assert counted.input_tokens == response.usage.input_tokens


def test_disabled_truncation_is_a_400_before_any_upstream_call(server: RunningServer,
                                                               upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    for params in ({"input": long_agent_history(6), "tools": TOOLS},
                   {"input": long_agent_history(6), "tools": TOOLS, "truncation": "disabled"},
                   # Fits alone, but not with the output the request reserves.
                   {"input": "Where does train 1 leave from? " * 40, "max_output_tokens": 400}):
        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model="fake/small", **params)  # type: ignore[call-overload]
        error = raised.value.body
        assert isinstance(error, dict) and error["code"] == "context_length_exceeded" and error["param"] == "input"
        assert f"context window of {WINDOW} tokens" in error["message"]
    assert upstream.requests == []


def test_streaming_requests_get_the_400_too(server: RunningServer, upstream: ScriptedUpstream) -> None:
    reply = httpx.post(f"{server.base_url}/responses", timeout=30, json={
        "model": "fake/small", "input": long_agent_history(6), "tools": TOOLS, "stream": True})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "context_length_exceeded"
    assert upstream.requests == []


def test_a_newest_message_over_the_window_cannot_be_truncated(server: RunningServer,
                                                              upstream: ScriptedUpstream) -> None:
    reply = httpx.post(f"{server.base_url}/responses", timeout=30, json={
        "model": "fake/small", "truncation": "auto",
        "input": [{"role": "user", "content": "hello"}, {"role": "user", "content": "word " * 2000}]})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"
    assert upstream.requests == []


def test_inputs_that_fit_go_upstream_unchanged(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply("Platform 2."))
    upstream.enqueue(text_reply("Platform 2."))
    items = long_agent_history(1)
    client.responses.create(model="fake/small", input=items, tools=TOOLS)  # type: ignore[arg-type]
    client.responses.create(model="fake/small", input=items, tools=TOOLS, truncation="auto")  # type: ignore[arg-type]
    assert upstream.requests[0] == upstream.requests[1]
    assert len(upstream.requests[0]["messages"]) == 6


def test_truncation_auto_over_a_response_chain(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    upstream.enqueue(text_reply("Noted."))
    first = client.responses.create(model="fake/m", input=long_agent_history(6), tools=TOOLS)  # type: ignore[arg-type]
    upstream.enqueue(text_reply("Platform 5."))
    second = client.responses.create(model="fake/small", input="Which platform again?", tools=TOOLS,  # type: ignore[arg-type]
                                     previous_response_id=first.id, truncation="auto")
    messages = upstream.requests[1]["messages"]
    assert messages[-1] == {"role": "user", "content": "Which platform again?"}
    assert_calls_keep_their_outputs(messages)
    assert second.usage is not None and second.usage.input_tokens <= WINDOW
    counted = client.responses.input_tokens.count(model="fake/small", input="Which platform again?", tools=TOOLS,  # type: ignore[arg-type]
                                                  previous_response_id=first.id, truncation="auto")
    assert counted.input_tokens == second.usage.input_tokens
