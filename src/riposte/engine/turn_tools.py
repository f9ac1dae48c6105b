"""The tools of one turn: what the model sees, which calls the server runs itself, and how the
response object echoes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from riposte.engine.client_items import NAMESPACE_SEPARATOR
from riposte.engine.client_tools import CLIENT_TOOL_TYPES, ClientTool, client_tool_definitions
from riposte.engine.tool_choice import DeclaredTool
from riposte.engine.translate import echoed_function_tool
from riposte.errors import InvalidRequestError
from riposte.tools.base import ArgumentStream, ServerTool, ToolContext, ToolFactory

__all__ = ["ToolFactory", "TurnTools", "additional_tools_in", "build_turn_tools"]

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
    # Upstream function name -> the client tool behind it, for every client tool that is not a plain
    # function (custom, namespaced, local_shell, shell, apply_patch): their calls become other items.
    client_shapes: dict[str, ClientTool] = field(default_factory=dict)

    @property
    def native_custom_names(self) -> frozenset[str]:
        """Custom tools the backend constrains natively: their calls go upstream as custom calls."""
        return frozenset(name for name, shape in self.client_shapes.items() if shape.native_custom)

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
    tools: list[dict[str, Any]], factories: Mapping[str, ToolFactory], context: ToolContext | None = None,
    additional_tools: Sequence[tuple[str, dict[str, Any]]] = (), native_grammar: bool = False,
) -> TurnTools:
    """Build every tool of the request. If anything fails, the tools built so far are closed.

    `additional_tools` are (param, tool) pairs from `additional_tools` input items: client tools the
    model may also call, which the response's `tools` does not echo. `native_grammar`: the backend
    takes custom tools with their grammar (the provider's `constrained_custom_tools`)."""
    built = _ToolsBeingBuilt(native_grammar)
    try:
        await built.add_request_tools(tools, factories, context or ToolContext())
        for param, tool in additional_tools:
            built.add_additional(tool, param)
        return built.finish()
    except BaseException:
        await TurnTools(instances=tuple(built.instances)).aclose()
        raise


def additional_tools_in(items: Sequence[dict[str, Any]], where: str) -> list[tuple[str, dict[str, Any]]]:
    """(param, tool) for each tool of each `additional_tools` item; `where` names the item list."""
    return [
        (f"{where}[{index}].tools[{position}]" if where == "input" else where, tool)
        for index, item in enumerate(items) if item.get("type") == "additional_tools"
        for position, tool in enumerate(item.get("tools") or []) if isinstance(tool, dict)
    ]


@dataclass
class _ToolsBeingBuilt:
    native_grammar: bool
    chat_definitions: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, ServerTool] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    shapes: list[ClientTool] = field(default_factory=list)
    echoed: list[dict[str, Any]] = field(default_factory=list)
    declared: list[DeclaredTool] = field(default_factory=list)
    instances: list[ServerTool] = field(default_factory=list)

    async def add_request_tools(
        self, tools: list[dict[str, Any]], factories: Mapping[str, ToolFactory], context: ToolContext
    ) -> None:
        for index, tool in enumerate(tools):
            kind = tool.get("type")
            param = f"tools[{index}]"
            if kind in CLIENT_TOOL_TYPES:
                names = self.add_client(tool, param)
                self.echoed.append(echoed_function_tool(tool) if kind == "function" else dict(tool))
                self.declared.append(DeclaredTool(str(kind), names))
            elif isinstance(kind, str) and kind in factories:
                server_tool = await factories[kind](tool, index, context)
                self.instances.append(server_tool)
                for name in server_tool.function_names():
                    self._claim(name, param)
                    self.server[name] = server_tool
                self.echoed.append(server_tool.echoed_config())
                self.chat_definitions.extend(server_tool.chat_definitions())
                self.declared.append(DeclaredTool(kind, server_tool.function_names(), tool.get("server_label")))
            else:
                raise InvalidRequestError(
                    f"Tools of type '{kind}' are not supported by this server.", param=f"{param}.type",
                    code="unsupported_value",
                )

    def add_additional(self, tool: dict[str, Any], param: str) -> None:
        if tool.get("type") not in CLIENT_TOOL_TYPES:
            raise InvalidRequestError(
                f"Tools of type '{tool.get('type')}' are not supported in additional_tools: only client tools "
                f"({', '.join(sorted(CLIENT_TOOL_TYPES))}).", param=f"{param}.type", code="unsupported_value",
            )
        self.add_client(tool, param)

    def add_client(self, tool: dict[str, Any], param: str) -> tuple[str, ...]:
        client = client_tool_definitions(tool, param, self.native_grammar)
        for shape in client.shapes:
            self._claim(shape.upstream_name, param)
        self.chat_definitions.extend(client.chat_definitions)
        self.shapes.extend(client.shapes)
        return tuple(shape.upstream_name for shape in client.shapes)

    def _claim(self, name: str, param: str) -> None:
        """The model calls functions by name, so two tools may never offer the same one."""
        if name in self.taken:
            raise InvalidRequestError(
                f"Two tools offer a function named '{name}'; function names must be unique across all tools "
                f"and MCP servers (namespace tools count as '<namespace>{NAMESPACE_SEPARATOR}<name>'; use "
                "allowed_tools to leave an MCP tool out).",
                param=param, code="duplicate_tool_name",
            )
        self.taken.add(name)

    def finish(self) -> TurnTools:
        plain = frozenset(s.upstream_name for s in self.shapes if s.kind == "function" and s.namespace is None)
        shaped = {s.upstream_name: s for s in self.shapes if s.kind != "function" or s.namespace is not None}
        return TurnTools(self.chat_definitions, self.server, plain, self.echoed, tuple(self.instances),
                         tuple(self.declared), shaped)
