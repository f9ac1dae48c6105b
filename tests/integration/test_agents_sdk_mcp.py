"""The Agents SDK's `HostedMCPTool`, unmodified, against Riposte and a real MCP server: calls
run on the server, with and without the SDK's approval callback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from agents import Agent, HostedMCPTool, OpenAIResponsesModel, RunConfig, Runner, set_tracing_disabled
from agents.items import MCPApprovalRequestItem, MCPListToolsItem, ToolCallItem
from agents.tool import MCPToolApprovalFunctionResult, MCPToolApprovalRequest

from riposte.testing.server import RunningServer
from riposte.tools.mcp_tool import DECLINED_MESSAGE
from tests.fakes.mcp_server import McpTestServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply

set_tracing_disabled(True)
RUN_CONFIG = RunConfig(tracing_disabled=True)
QUESTION = "What is the boiling point of myawesomeliquid in Celsius?"
ARGUMENTS = '{"liquid_name":"myawesomeliquid","celsius":true}'


@pytest.fixture
async def client(mcp_riposte: RunningServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=mcp_riposte.base_url, api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


def agent(client: openai.AsyncOpenAI, tool: HostedMCPTool) -> Agent[Any]:
    return Agent(name="chemist", tools=[tool], model=OpenAIResponsesModel(model="fake/m", openai_client=client))


def config(server: McpTestServer, approval: str) -> Any:
    return {"type": "mcp", "server_label": "localmcp", "server_url": server.url, "require_approval": approval}


async def test_hosted_mcp_tool_runs_on_the_server(
    client: openai.AsyncOpenAI, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer
) -> None:
    mcp_model.enqueue(tool_calls_reply([("call_1", "get_boiling_point", ARGUMENTS)]), text_reply("-100 degrees."))
    calls = boiling_mcp.rpc_calls("tools/call")

    result = await Runner.run(agent(client, HostedMCPTool(tool_config=config(boiling_mcp, "never"))), QUESTION,
                              run_config=RUN_CONFIG)

    assert result.final_output == "-100 degrees."
    assert any(isinstance(item, MCPListToolsItem) for item in result.new_items)
    mcp_calls = [i.raw_item for i in result.new_items if isinstance(i, ToolCallItem)]
    assert [(c.type, c.output) for c in mcp_calls] == [("mcp_call", "-100")]  # type: ignore[union-attr]
    assert boiling_mcp.rpc_calls("tools/call") == calls + 1


@pytest.mark.parametrize("approve", [True, False])
async def test_hosted_mcp_tool_with_an_approval_callback(
    client: openai.AsyncOpenAI, mcp_model: ScriptedUpstream, boiling_mcp: McpTestServer, approve: bool
) -> None:
    asked: list[str] = []

    def decide(request: MCPToolApprovalRequest) -> MCPToolApprovalFunctionResult:
        asked.append(request.data.name)
        return {"approve": approve, "reason": "not today"} if not approve else {"approve": True}

    mcp_model.enqueue(tool_calls_reply([("call_2", "get_boiling_point", ARGUMENTS)]),
                      text_reply("-100." if approve else "I was not allowed to look."))
    calls = boiling_mcp.rpc_calls("tools/call")
    tool = HostedMCPTool(tool_config=config(boiling_mcp, "always"), on_approval_request=decide)

    result = await Runner.run(agent(client, tool), QUESTION, run_config=RUN_CONFIG)

    assert asked == ["get_boiling_point"]
    assert any(isinstance(item, MCPApprovalRequestItem) for item in result.new_items)
    assert boiling_mcp.rpc_calls("tools/call") == calls + (1 if approve else 0)
    assert result.final_output == ("-100." if approve else "I was not allowed to look.")
    last = mcp_model.requests[-1]["messages"][-1]
    assert last["role"] == "tool"
    expected = [{"type": "text", "text": "-100"}] if approve else f"{DECLINED_MESSAGE} The user's reason: not today"
    assert last["content"] == expected
