"""The context window check before each later model call of a turn: a server-side tool's output
can push the input past the window after the first call fitted. `truncation: "auto"` drops the
oldest rounds from what that call sends; `"disabled"` fails the response with
`context_length_exceeded` instead of passing the backend's error through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from riposte.config import ProviderConfig
from riposte.engine.usage import count_input_tokens
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import server_factory
from tests.fakes.mcp_server import McpTestServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.context_servers import CONTEXT_SETTINGS, WINDOW
from tests.integration.mcp_fixtures import LOOPBACK, mcp_model, mcp_tool, mcp_upstream, toolbox_mcp
from tests.integration.sdk import sdk, stream_events
from tests.integration.test_truncation import assert_calls_keep_their_outputs, long_agent_history

__all__ = ["mcp_model", "mcp_upstream", "toolbox_mcp"]  # fixtures

# About 400 tokens: the first call fits the 600-token window, the second one no longer does.
RECITE = tool_calls_reply([("call_r", "recite", '{"line": "All work and no play.", "times": 70}')])


@pytest.fixture(scope="module")
def riposte(tmp_path_factory: pytest.TempPathFactory, mcp_upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    data: Path = tmp_path_factory.mktemp("context-loop")
    with server_factory(data, f"sqlite+aiosqlite:///{data / 'riposte.db'}") as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=mcp_upstream.base_url, api_key="x")],
                      outbound=LOOPBACK, **CONTEXT_SETTINGS)


def _params(toolbox_mcp: McpTestServer, **fields: Any) -> dict[str, Any]:
    return {"model": "fake/small", "input": long_agent_history(2),
            "tools": [mcp_tool(toolbox_mcp, allowed_tools=["recite"], require_approval="never")], **fields}


def test_truncation_auto_fits_a_later_call_of_the_tool_loop(
    riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(RECITE, text_reply("Done reciting."))
    response = sdk(riposte).responses.create(**_params(toolbox_mcp, truncation="auto"))

    assert response.status == "completed" and response.output_text == "Done reciting."
    first, second = mcp_model.requests
    assert "Where does train 0 leave from?" in str(first["messages"])  # the first call fitted whole
    messages = second["messages"]
    assert count_input_tokens(messages, second["tools"]) <= WINDOW
    assert "Where does train 0 leave from?" not in str(messages)  # the oldest round went
    assert messages[-1]["role"] == "tool" and "All work and no play." in str(messages[-1]["content"])
    assert_calls_keep_their_outputs(messages)
    assert count_input_tokens(first["messages"][:-1] + messages[-2:], second["tools"]) > WINDOW


def test_disabled_truncation_fails_the_response_before_the_later_call(
    riposte: RunningServer, mcp_model: ScriptedUpstream, toolbox_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(RECITE)
    events = stream_events(riposte, **_params(toolbox_mcp))

    assert_valid_stream(events)
    assert len(mcp_model.requests) == 1  # the call over the window was never sent
    error = next(event for event in events if event.type == "error")
    assert error.code == "context_length_exceeded" and f"context window of {WINDOW} tokens" in error.message
    final = events[-1].response
    assert events[-1].type == "response.failed" and final.error is not None
    assert "context window" in final.error.message
    stored = httpx.get(f"{riposte.base_url}/responses/{final.id}", timeout=30).json()
    assert stored["status"] == "failed" and stored["error"]["message"] == final.error.message
    assert [item["type"] for item in stored["output"]][-1] == "mcp_call"
