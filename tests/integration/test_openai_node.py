"""The official openai Node SDK (`openai` 7, pinned in tests/clients/openai-node), unmodified,
against a real Riposte over the scripted upstream. Its `responses.stream()` helper builds the
response from the events and throws on any it cannot place, so each streamed scenario also checks
the event grammar as a Node application sees it; `run.mjs` adds the sequence numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from riposte.testing.server import RunningServer
from tests.clients.npm import npm_installed
from tests.conftest import REPO
from tests.fakes.scripted_upstream import (
    ScriptedUpstream,
    make_usage,
    reasoning_reply,
    text_reply,
    tool_calls_reply,
)

PACKAGE = REPO / "tests" / "clients" / "openai-node"


@pytest.fixture(scope="session")
def openai_node() -> None:
    npm_installed(PACKAGE)


def run(server: RunningServer, scenario: str) -> Any:
    node = shutil.which("node")
    assert node is not None, "node is needed for the openai Node SDK test"
    done = subprocess.run([node, str(PACKAGE / "run.mjs"), server.base_url, scenario],
                          capture_output=True, text=True, timeout=120, cwd=PACKAGE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def text_of(content: str | list[dict[str, Any]]) -> str:
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def test_create_retrieve_and_list_input_items(
    openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Saturn.", usage=make_usage(12, 3)))

    seen = run(fake_server, "basic")

    assert seen["text"] == "Saturn."
    assert seen["usage"]["input_tokens"] == 12 and seen["usage"]["output_tokens"] == 3
    assert seen["status"] == "completed" and seen["sameOutput"] is True
    assert seen["inputItems"] == [["message", "user"]]


def test_a_stream_through_the_sdks_accumulator(
    openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("One, two, three.", pieces=4))

    seen = run(fake_server, "stream")

    assert seen["inOrder"] is True
    assert seen["types"][:2] == ["response.created", "response.in_progress"]
    assert seen["types"][-1] == "response.completed"
    assert seen["types"].count("response.output_text.delta") == 4
    assert seen["deltas"] == seen["text"] == "One, two, three."
    assert seen["status"] == "completed"


def test_a_function_call_streamed_then_answered_with_previous_response_id(
    openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_1", "get_weather", '{"city": "Paris"}')]),
                     text_reply("It is sunny in Paris."))

    seen = run(fake_server, "tools")

    assert seen["inOrder"] is True
    assert "response.function_call_arguments.delta" in seen["firstTypes"]
    assert "response.function_call_arguments.done" in seen["firstTypes"]
    assert seen["call"] == {"name": "get_weather", "arguments": '{"city": "Paris"}', "call_id": "call_1",
                            "status": "completed"}
    assert seen["text"] == "It is sunny in Paris."
    assert upstream.requests[0]["tools"][0]["function"]["strict"] is True
    assert [m["role"] for m in upstream.requests[1]["messages"]] == ["user", "assistant", "tool"]


def test_structured_output_parsed_by_the_sdk(
    openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply('{"city": "Paris", "sunny": true}'),
                     text_reply('{"city": "Paris", "sunny": false}', pieces=3))

    seen = run(fake_server, "parse")

    assert seen["parsed"] == {"city": "Paris", "sunny": True}
    assert seen["streamedParsed"] == {"city": "Paris", "sunny": False}
    response_format = upstream.requests[0]["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "forecast"


def test_a_reasoning_item_streamed(
    openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply("Six times seven.", "42"))

    seen = run(fake_server, "reasoning")

    assert seen["inOrder"] is True
    assert "response.reasoning_text.delta" in seen["types"]
    assert seen["text"] == "42"
    assert seen["reasoning"] == [{"type": "reasoning_text", "text": "Six times seven."}]


def test_a_conversation(openai_node: None, fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("Saturn."), text_reply("Jupiter."))

    seen = run(fake_server, "conversation")

    assert seen["texts"] == ["Saturn.", "Jupiter."]
    assert seen["conversation"]["id"].startswith("conv_")
    assert seen["items"] == [["message", "user"], ["message", "assistant"], ["message", "user"],
                             ["message", "assistant"]]
    history = upstream.requests[1]["messages"]
    assert [(m["role"], text_of(m["content"])) for m in history] == [
        ("user", "Name a planet."), ("assistant", "Saturn."), ("user", "Another one.")]


def test_a_bad_parameter_is_an_api_error_naming_it(openai_node: None, fake_server: RunningServer) -> None:
    seen = run(fake_server, "errors")

    assert seen == {"raised": True, "status": 400, "param": "temperature", "type": "invalid_request_error"}
