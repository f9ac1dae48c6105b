"""What reaches the upstream is a sequence Chat Completions accepts, however the client ordered
its items: the issue's example, inline and across a `previous_response_id` chain."""

from __future__ import annotations

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import strict_create

TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]


def roles(request: dict[str, object]) -> list[str]:
    return [m["role"] for m in request["messages"]]  # type: ignore[attr-defined, index]


def test_a_message_between_a_call_and_its_output_goes_after_the_output(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("done"))
    strict_create(fake_server, model="fake/m", tools=TOOLS, input=[
        {"role": "user", "content": "look it up"},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"role": "user", "content": "and be quick"},
        {"type": "function_call_output", "call_id": "c1", "output": "found"},
    ])
    assert roles(upstream.requests[0]) == ["user", "assistant", "tool", "user"]


def test_a_message_before_the_output_of_a_stored_call_goes_after_it(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("c1", "lookup", "{}")]), text_reply("done"))
    first = strict_create(fake_server, model="fake/m", tools=TOOLS, input="look it up")

    strict_create(fake_server, model="fake/m", tools=TOOLS, previous_response_id=first.id, input=[
        {"role": "user", "content": "and be quick"},
        {"type": "function_call_output", "call_id": "c1", "output": "found"},
    ])
    assert roles(upstream.requests[1]) == ["user", "assistant", "tool", "user"]
    assert upstream.requests[1]["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "found"}


def test_default_text_format_sends_no_response_format(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("hi"), text_reply("hi"))
    strict_create(fake_server, model="fake/m", input="hi")
    strict_create(fake_server, model="fake/m", input="hi", text={"verbosity": "medium"})
    assert all("response_format" not in request for request in upstream.requests)
