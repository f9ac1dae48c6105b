"""The tools of one turn: what the model sees, which calls the server runs itself, and how the
response object echoes them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from riposte.engine.translate import chat_function_tool, echoed_function_tool
from riposte.errors import InvalidRequestError
from riposte.tools.base import ServerTool

# Builds a server tool from the request's tool config, its index in `tools` (which names the param
# in errors) and the request's `include` values.
ToolFactory = Callable[[dict[str, Any], int, frozenset[str]], ServerTool]


@dataclass(frozen=True)
class TurnTools:
    chat_definitions: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, ServerTool] = field(default_factory=dict)
    client_names: frozenset[str] = frozenset()
    echoed: list[dict[str, Any]] = field(default_factory=list)


def build_turn_tools(
    tools: list[dict[str, Any]], factories: Mapping[str, ToolFactory], includes: frozenset[str] = frozenset()
) -> TurnTools:
    chat_definitions: list[dict[str, Any]] = []
    server: dict[str, ServerTool] = {}
    client_names: set[str] = set()
    echoed: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind == "function":
            definition = chat_function_tool(tool, index)
            client_names.add(definition["function"]["name"])
            echoed.append(echoed_function_tool(tool))
        elif isinstance(kind, str) and kind in factories:
            server_tool = factories[kind](tool, index, includes)
            definition = server_tool.chat_definition()
            server[server_tool.function_name] = server_tool
            echoed.append(server_tool.echoed_config())
        else:
            raise InvalidRequestError(
                f"Tools of type '{kind}' are not supported by this server.", param=f"tools[{index}].type",
                code="unsupported_value",
            )
        chat_definitions.append(definition)
    return TurnTools(chat_definitions, server, frozenset(client_names), echoed)
