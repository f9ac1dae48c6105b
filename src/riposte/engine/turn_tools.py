"""The tools of one turn: what the model sees, which calls the server runs itself, and how the
response object echoes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from riposte.engine.tool_choice import DeclaredTool
from riposte.engine.translate import chat_function_tool, echoed_function_tool
from riposte.errors import InvalidRequestError
from riposte.tools.base import ArgumentStream, ServerTool, ToolContext, ToolFactory

__all__ = ["ToolFactory", "TurnTools", "build_turn_tools"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnTools:
    chat_definitions: list[dict[str, Any]] = field(default_factory=list)
    # Function name -> the server tool that runs calls to it.
    server: dict[str, ServerTool] = field(default_factory=dict)
    client_names: frozenset[str] = frozenset()
    echoed: list[dict[str, Any]] = field(default_factory=list)
    # Every server tool of the turn once, in request order.
    instances: tuple[ServerTool, ...] = ()
    # The request's tools as tool_choice refers to them, in request order.
    declared: tuple[DeclaredTool, ...] = ()

    def argument_streams(self) -> dict[str, ArgumentStream]:
        """Server calls whose items open while the model streams them, by function name."""
        streams = {name: tool.argument_stream(name) for name, tool in self.server.items()}
        return {name: stream for name, stream in streams.items() if stream is not None}

    async def aclose(self) -> None:
        for tool in self.instances:
            try:
                await tool.aclose()
            except Exception:  # closing one tool must not keep the others open
                logger.warning("closing a server tool failed", exc_info=True)


async def build_turn_tools(
    tools: list[dict[str, Any]], factories: Mapping[str, ToolFactory], context: ToolContext | None = None
) -> TurnTools:
    """Build every tool of the request. If anything fails, the tools built so far are closed."""
    context = context or ToolContext()
    built: list[ServerTool] = []
    try:
        return await _build(tools, factories, context, built)
    except BaseException:
        await TurnTools(instances=tuple(built)).aclose()
        raise


async def _build(
    tools: list[dict[str, Any]], factories: Mapping[str, ToolFactory], context: ToolContext, built: list[ServerTool]
) -> TurnTools:
    chat_definitions: list[dict[str, Any]] = []
    server: dict[str, ServerTool] = {}
    client_names: set[str] = set()
    echoed: list[dict[str, Any]] = []
    declared: list[DeclaredTool] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "function":
            definition = chat_function_tool(tool, index)
            _claim(definition["function"]["name"], index, client_names, server)
            client_names.add(definition["function"]["name"])
            echoed.append(echoed_function_tool(tool))
            chat_definitions.append(definition)
            declared.append(DeclaredTool("function", (definition["function"]["name"],)))
        elif isinstance(kind, str) and kind in factories:
            server_tool = await factories[kind](tool, index, context)
            built.append(server_tool)
            for name in server_tool.function_names():
                _claim(name, index, client_names, server)
                server[name] = server_tool
            echoed.append(server_tool.echoed_config())
            chat_definitions.extend(server_tool.chat_definitions())
            declared.append(DeclaredTool(kind, server_tool.function_names(), tool.get("server_label")))
        else:
            raise InvalidRequestError(
                f"Tools of type '{kind}' are not supported by this server.", param=f"tools[{index}].type",
                code="unsupported_value",
            )
    return TurnTools(chat_definitions, server, frozenset(client_names), echoed, tuple(built), tuple(declared))


def _claim(name: str, index: int, client_names: set[str], server: Mapping[str, ServerTool]) -> None:
    """The model calls functions by name, so two tools may never offer the same one."""
    if name in client_names or name in server:
        raise InvalidRequestError(
            f"Two tools offer a function named '{name}'; function names must be unique across all tools "
            "and MCP servers (use allowed_tools to leave one out).",
            param=f"tools[{index}]", code="duplicate_tool_name",
        )
