"""The reference MCP recordings replay end to end: Riposte lists a real MCP server (the `mcp` SDK
on loopback, serving the recorded tools), sends exactly the recorded chat requests, and runs the
recorded calls on that server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riposte.config import InferenceMode, ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from riposte.tools.mcp_tool import DECLINED_MESSAGE
from tests.conftest import REFERENCE_RECORDINGS, server_factory
from tests.fakes.mcp_server import McpTestServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.mcp_fixtures import LOOPBACK, TOKEN, mcp_tool
from tests.integration.sdk import stream_events, strict_create

QUESTION = "What is the boiling point of myawesomeliquid in Celsius?"
ARGUMENTS = {"liquid_name": "myawesomeliquid", "celsius": True}
_PREFIX = "tests/integration/responses/test_tool_responses.py::"
_CASE = "[client_with_models-txt=openai/gpt-4o-boiling_point_tool]"
NON_STREAMING = _PREFIX + "test_response_non_streaming_mcp_tool" + _CASE
SEQUENTIAL = _PREFIX + "test_response_sequential_mcp_tool" + _CASE


def approval_scope(approve: bool) -> str:
    return _PREFIX + "test_response_mcp_tool_approval" + _CASE.replace("gpt-4o-", f"gpt-4o-{approve}-")


def scope(name: str) -> dict[str, str]:
    return {"X-Riposte-Replay-Scope": name}


@pytest.fixture(scope="module")
def replay_riposte(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("mcp-replay")
    with server_factory(data, f"sqlite+aiosqlite:///{data / 'riposte.db'}") as factory:
        yield factory(inference_mode=InferenceMode.REPLAY, recordings_dir=REFERENCE_RECORDINGS, outbound=LOOPBACK,
                      providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])


def recorded_answer(scope_name: str, messages: int) -> str:
    """The text the recording of `scope_name` with that many messages answered."""
    for path in REFERENCE_RECORDINGS.glob("*.json"):
        data = json.loads(path.read_text())
        if data.get("test_id") == scope_name and len(data["request"]["body"]["messages"]) == messages:
            return "".join(choice["delta"].get("content") or "" for chunk in data["response"]["body"]
                           for choice in chunk["__data__"].get("choices") or [])
    raise AssertionError(f"no recording of {scope_name} with {messages} messages")


def assert_listed_called_answered(output: list[Any], answer: str) -> None:
    listing, call, message = output
    assert listing.type == "mcp_list_tools" and listing.server_label == "localmcp"
    assert {t.name for t in listing.tools} == {"get_boiling_point", "greet_everyone"}
    assert call.type == "mcp_call" and call.name == "get_boiling_point"
    assert json.loads(call.arguments) == ARGUMENTS
    assert (call.error, call.output) == (None, "-100")
    assert message.content[0].text == answer


def test_non_streaming_mcp_tool_replays(
    replay_riposte: RunningServer, boiling_mcp: McpTestServer, guarded_mcp: McpTestServer
) -> None:
    calls = boiling_mcp.rpc_calls("tools/call")
    response = strict_create(replay_riposte, scope(NON_STREAMING), model="openai/gpt-4o", input=QUESTION,
                             tools=[mcp_tool(boiling_mcp)])
    assert_listed_called_answered(response.output, recorded_answer(NON_STREAMING, 3))
    assert boiling_mcp.rpc_calls("tools/call") == calls + 1
    # The recorded test then used a server that wants a token, sent as a plain Authorization header.
    guarded = mcp_tool(guarded_mcp, headers={"Authorization": f"Bearer {TOKEN}"})
    response = strict_create(replay_riposte, scope(NON_STREAMING), model="openai/gpt-4o", input=QUESTION,
                             tools=[guarded])
    assert_listed_called_answered(response.output, recorded_answer(NON_STREAMING, 3))


def test_streaming_mcp_tool_replays_with_a_valid_stream(
    replay_riposte: RunningServer, boiling_mcp: McpTestServer
) -> None:
    events = stream_events(replay_riposte, scope(NON_STREAMING), model="openai/gpt-4o", input=QUESTION,
                           tools=[mcp_tool(boiling_mcp)])
    assert_valid_stream(events)
    assert_listed_called_answered(events[-1].response.output, recorded_answer(NON_STREAMING, 3))


def test_sequential_mcp_tool_replays_and_reuses_the_listing(
    replay_riposte: RunningServer, boiling_mcp: McpTestServer
) -> None:
    tools = [mcp_tool(boiling_mcp)]
    first = strict_create(replay_riposte, scope(SEQUENTIAL), model="openai/gpt-4o", input=QUESTION, tools=tools)
    assert_listed_called_answered(first.output, recorded_answer(SEQUENTIAL, 3))
    listings = boiling_mcp.rpc_calls("tools/list")
    second = strict_create(replay_riposte, scope(SEQUENTIAL), model="openai/gpt-4o", input=QUESTION, tools=tools,
                           previous_response_id=first.id)
    assert second.output[-1].content[0].text == recorded_answer(SEQUENTIAL, 5)
    assert second.output[0].type == "mcp_list_tools"
    assert boiling_mcp.rpc_calls("tools/list") == listings


def test_mcp_tool_approval_granted_replays(replay_riposte: RunningServer, boiling_mcp: McpTestServer) -> None:
    headers = scope(approval_scope(True))
    tools = [mcp_tool(boiling_mcp, require_approval="always")]
    first = strict_create(replay_riposte, headers, model="openai/gpt-4o", input=QUESTION, tools=tools)
    listing, request = first.output
    assert listing.type == "mcp_list_tools" and len(listing.tools) == 2
    assert request.type == "mcp_approval_request" and request.name == "get_boiling_point"
    assert json.loads(request.arguments) == ARGUMENTS

    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    second = strict_create(replay_riposte, headers, model="openai/gpt-4o", previous_response_id=first.id, tools=tools,
                           input=[approval])
    assert_listed_called_answered(second.output, recorded_answer(approval_scope(True), 3))
    assert second.output[1].approval_request_id == request.id


def test_mcp_tool_approval_denied_replays_and_tells_the_model(
    tmp_path: Path, boiling_mcp: McpTestServer, mcp_upstream: ScriptedUpstream
) -> None:
    """The recorded first turn replays. The seed system never told its model about a denial (it
    re-asked the question and dropped the repeated call), so the declined follow-up was never
    recorded: in record-if-missing mode the scripted model answers it, and the test checks what
    Riposte sent."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for path in REFERENCE_RECORDINGS.glob("*.json"):
        if json.loads(path.read_text()).get("test_id") == approval_scope(False):
            shutil.copy(path, recordings / path.name)
    mcp_upstream.reset()
    mcp_upstream.enqueue(text_reply("Understood, I will not look it up."))
    data = tmp_path / "data"
    with server_factory(data, f"sqlite+aiosqlite:///{data / 'riposte.db'}") as factory:
        server = factory(inference_mode=InferenceMode.RECORD_IF_MISSING, recordings_dir=recordings, outbound=LOOPBACK,
                         providers=[ProviderConfig(name="openai", base_url=mcp_upstream.base_url, api_key="x")])
        headers = scope(approval_scope(False))
        tools = [mcp_tool(boiling_mcp, require_approval="always")]
        first = strict_create(server, headers, model="openai/gpt-4o", input=QUESTION, tools=tools)
        assert mcp_upstream.requests == []  # the first turn came from the recording
        request = first.output[1]
        calls = boiling_mcp.rpc_calls("tools/call")
        second = strict_create(server, headers, model="openai/gpt-4o", previous_response_id=first.id, tools=tools,
                               input=[{"type": "mcp_approval_response", "approval_request_id": request.id,
                                       "approve": False}])
    assert all(item.type != "mcp_call" for item in second.output)
    assert boiling_mcp.rpc_calls("tools/call") == calls
    sent = mcp_upstream.requests[0]["messages"]
    assert sent[0] == {"role": "user", "content": QUESTION}
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_boiling_point", "arguments": request.arguments}
    assert sent[2] == {"role": "tool", "tool_call_id": sent[1]["tool_calls"][0]["id"], "content": DECLINED_MESSAGE}
