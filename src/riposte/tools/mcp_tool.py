"""Remote MCP servers as a server-side tool of the turn loop (tools/base.py).

- Listing: before the turn, the server's tools are listed (or an earlier listing of the same
  server and filter is reused) and announced as an `mcp_list_tools` item. A listing that fails
  (refused connection, 401, timeout) is a failed item with its error, and the turn goes on
  without that server's tools.
- The model sees each allowed tool as a chat function of the same name, its input schema as the
  parameters: exactly the shape of the reference recordings.
- A call becomes an `mcp_call` item whose arguments stream, then runs on the server. A call that
  needs approval becomes an `mcp_approval_request` item instead and ends the turn; the client's
  `mcp_approval_response` in a later turn runs it or tells the model it was declined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from riposte.errors import InvalidRequestError
from riposte.outbound import OutboundPolicy
from riposte.tools.base import (
    ArgumentStream,
    CallPlan,
    ResumedCall,
    ServerTool,
    ToolCall,
    ToolContext,
    ToolFactory,
    ToolListing,
    ToolRun,
)
from riposte.tools.mcp_config import McpConfig, parse_mcp_tool
from riposte.tools.mcp_failure import McpFailure

if TYPE_CHECKING:
    import mcp_types

    from riposte.tools.mcp_session import McpConnection

DECLINED_MESSAGE = "The user declined to run this tool call, so it was not run."


@dataclass(frozen=True)
class ListedTool:
    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    annotations: dict[str, Any] | None = None

    @property
    def read_only(self) -> bool:
        return bool((self.annotations or {}).get("readOnlyHint"))

    def listed(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema,
                "annotations": self.annotations}


@dataclass
class McpTool:
    config: McpConfig
    connection: McpConnection
    tools: list[ListedTool]
    listing_error: str | None = None
    resumed: list[ResumedCall] = field(default_factory=list)
    # Calls the client approved in this turn: they run instead of asking again.
    approved: dict[str, str] = field(default_factory=dict)  # call id -> approval request id

    def function_names(self) -> tuple[str, ...]:
        return tuple(tool.name for tool in self.tools)

    def chat_definitions(self) -> list[dict[str, Any]]:
        return [_chat_function(tool, self.config) for tool in self.tools]

    def echoed_config(self) -> dict[str, Any]:
        return self.config.echoed()

    def listings(self) -> list[ToolListing]:
        label = self.config.server_label
        final = {"type": "mcp_list_tools", "server_label": label, "tools": [t.listed() for t in self.tools],
                 "error": self.listing_error}
        pending = {"type": "mcp_list_tools", "server_label": label, "tools": []}
        return [ToolListing("mcpl", pending, final, failed=self.listing_error is not None)]

    def argument_stream(self, name: str) -> ArgumentStream | None:
        if self._needs_approval(name):
            return None  # an approval request is announced whole, once the call is complete
        return ArgumentStream("mcp", self._call_fields(name, None))

    def plan(self, call: ToolCall) -> CallPlan:
        if call.call_id not in self.approved and self._needs_approval(call.name):
            return CallPlan("mcpr", {"type": "mcp_approval_request", "server_label": self.config.server_label,
                                     "name": call.name, "arguments": call.arguments or "{}"}, awaits_client=True)
        fields = {**self._call_fields(call.name, self.approved.get(call.call_id)), "arguments": call.arguments or "{}"}
        return CallPlan("mcp", fields, phases=("in_progress",))

    def resumed_calls(self) -> list[ResumedCall]:
        return self.resumed

    async def run(self, call: ToolCall) -> ToolRun:
        fields = {**self._call_fields(call.name, self.approved.get(call.call_id)), "arguments": call.arguments or "{}"}
        try:
            arguments = _arguments(call.arguments)
            result = await self.connection.call_tool(call.name, arguments)
        except McpFailure as failure:
            return _failed(fields, failure.as_item_error(), f"Error calling {call.name}: {failure}")
        if result.is_error:
            content = _content_parts(result)
            error = {"type": "mcp_tool_execution_error", "content": [p["text"] for p in content]}
            return _failed(fields, error, content)
        return ToolRun(item={**fields, "status": "completed", "output": _output_text(result)},
                       tool_message_content=_content_parts(result), final_phase="completed")

    async def aclose(self) -> None:
        await self.connection.aclose()

    def _needs_approval(self, name: str) -> bool:
        tool = next((t for t in self.tools if t.name == name), None)
        return self.config.needs_approval(name, tool.read_only if tool else False)

    def _call_fields(self, name: str, approval_request_id: str | None) -> dict[str, Any]:
        return {"type": "mcp_call", "status": "in_progress", "server_label": self.config.server_label, "name": name,
                "output": None, "error": None, "approval_request_id": approval_request_id}


def mcp_factory(policy: OutboundPolicy, timeout_seconds: float) -> ToolFactory:
    """The `mcp` entry of Services.tool_factories."""

    async def build(tool: dict[str, Any], index: int, context: ToolContext) -> ServerTool:
        # The mcp SDK takes seconds to import: only servers whose requests use MCP pay for it.
        from riposte.tools.mcp_session import McpConnection

        config = parse_mcp_tool(tool, f"tools[{index}]")
        await policy.check(config.server_url, f"tools[{index}].server_url")
        resumed, approved = _resumed_calls(config, context)
        connection = McpConnection(config.server_url, dict(config.headers), timeout_seconds)
        try:
            tools, error = await _tools(config, connection, context)
        except BaseException:
            await connection.aclose()
            raise
        return McpTool(config, connection, tools, error, resumed, approved)

    return build


# ---------------------------------------------------------------------- listing


async def _tools(config: McpConfig, connection: McpConnection,
                 context: ToolContext) -> tuple[list[ListedTool], str | None]:
    earlier = _earlier_listing(config, context)
    if earlier is not None:
        return earlier, None
    try:
        listed = await connection.list_tools()
    except McpFailure as failure:
        return [], f"Error retrieving tool list from MCP server '{config.server_label}': {failure}"
    tools = [_listed(tool) for tool in listed]
    return [t for t in tools if config.allows(t.name, t.read_only)], None


def _listed(tool: mcp_types.Tool) -> ListedTool:
    annotations = None
    if tool.annotations is not None:
        annotations = tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
    return ListedTool(name=tool.name, input_schema=dict(tool.input_schema), description=tool.description or None,
                      annotations=annotations or None)


def _earlier_listing(config: McpConfig, context: ToolContext) -> list[ListedTool] | None:
    """A listing of an earlier turn that holds exactly the tools this request would list.

    When the previous response had the same server and filter, its listing is the answer. Without
    that knowledge (a conversation, or items the client sent back), an earlier listing only serves
    a request that names its tools, all of them in it."""
    label = config.server_label
    found = [item for item in (*context.prior_items, *context.input_items)
             if item.get("type") == "mcp_list_tools" and item.get("server_label") == label
             and not item.get("error") and isinstance(item.get("tools"), list)]
    if not found:
        return None
    tools = [_from_item(tool) for tool in found[-1]["tools"] if isinstance(tool, Mapping)]
    if any(config.same_listing_as(earlier) for earlier in context.prior_tools):
        return tools
    names = config.allowed.tool_names if config.allowed is not None and config.allowed.read_only is None else None
    if names is not None and names <= {tool.name for tool in tools}:
        return [tool for tool in tools if tool.name in names]
    return None


def _from_item(tool: Mapping[str, Any]) -> ListedTool:
    return ListedTool(name=str(tool.get("name")), input_schema=dict(tool.get("input_schema") or {}),
                      description=tool.get("description"), annotations=tool.get("annotations"))


def _chat_function(tool: ListedTool, config: McpConfig) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    description = tool.description
    if config.server_description:
        description = f"{description or ''}\n\n(From MCP server '{config.server_label}': {config.server_description})"
    if description:
        function["description"] = description
    function["parameters"] = tool.input_schema
    return {"type": "function", "function": function}


# ---------------------------------------------------------------------- approvals


def _resumed_calls(config: McpConfig, context: ToolContext) -> tuple[list[ResumedCall], dict[str, str]]:
    """Approval requests of earlier turns for this server, with what this turn's input says about them."""
    earlier = (*context.prior_items, *context.input_items)
    requests = {i["id"]: i for i in earlier if i.get("type") == "mcp_approval_request" and "id" in i}
    answers = _approval_answers(context.input_items, requests)
    settled = {i.get("approval_request_id") for i in context.prior_items if i.get("type") == "mcp_approval_response"}
    resumed: list[ResumedCall] = []
    approved: dict[str, str] = {}
    for request_id, request in requests.items():
        if request.get("server_label") != config.server_label or request_id in settled:
            continue
        call = ToolCall(index=0, call_id=_waiting_call_id(context.history, request) or request_id,
                        name=str(request.get("name")), argument_pieces=[str(request.get("arguments") or "{}")])
        answer = answers.get(request_id)
        if answer is None:
            resumed.append(ResumedCall(call, "unanswered"))
        elif answer.get("approve"):
            approved[call.call_id] = request_id
            resumed.append(ResumedCall(call, "approved"))
        else:
            reason = answer.get("reason")
            message = DECLINED_MESSAGE + (f" The user's reason: {reason}" if isinstance(reason, str) and reason else "")
            resumed.append(ResumedCall(call, "declined", message))
    return resumed, approved


def _approval_answers(
    input_items: Sequence[Mapping[str, Any]], requests: Mapping[str, Any]
) -> dict[str, Mapping[str, Any]]:
    answers: dict[str, Mapping[str, Any]] = {}
    for index, item in enumerate(input_items):
        if item.get("type") != "mcp_approval_response":
            continue
        request_id = item.get("approval_request_id")
        if request_id not in requests:
            raise InvalidRequestError(
                f"No mcp_approval_request with id '{request_id}' in this response chain or input.",
                param=f"input[{index}].approval_request_id",
            )
        answers[str(request_id)] = item
    return answers


def _waiting_call_id(history: Iterable[Mapping[str, Any]], request: Mapping[str, Any]) -> str | None:
    """The id of the model's call this request stands for: a call in history with the same name and
    arguments that has no result yet."""
    messages = list(history)
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if (call.get("id") not in answered and function.get("name") == request.get("name")
                    and function.get("arguments") == request.get("arguments")):
                return str(call["id"])
    return None


# ---------------------------------------------------------------------- running a call


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError as exc:
        raise McpFailure("mcp_protocol_error", -32602, f"the arguments are not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise McpFailure("mcp_protocol_error", -32602, "the arguments are not a JSON object")
    return parsed


def _failed(fields: dict[str, Any], error: dict[str, Any], message: str | list[dict[str, Any]]) -> ToolRun:
    return ToolRun(item={**fields, "status": "failed", "error": error}, tool_message_content=message, failed=True,
                   final_phase="failed")


def _content_parts(result: mcp_types.CallToolResult) -> list[dict[str, Any]]:
    """The result as text parts for the model: text blocks as they are, anything else as JSON."""
    parts = [{"type": "text", "text": block.text if block.type == "text"
              else orjson.dumps(block.model_dump(mode="json", by_alias=True, exclude_none=True)).decode()}
             for block in result.content]
    if not parts and result.structured_content is not None:
        parts = [{"type": "text", "text": orjson.dumps(result.structured_content).decode()}]
    return parts


def _output_text(result: mcp_types.CallToolResult) -> str:
    return "\n".join(part["text"] for part in _content_parts(result))
