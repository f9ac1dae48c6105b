"""`tool_choice` for a turn: which functions the model may see, and what each upstream call forces.

A Responses `tool_choice` names tools the way the request declared them (a function by name, a
built-in tool by type, an MCP server by label and tool name, or a set of them as `allowed_tools`);
the model upstream only knows chat functions. This module maps one onto the other, once, before
the turn starts (a bad choice is a 400). A forced choice (`"required"`, or one named tool) applies
to the first model call of the turn only: forcing every call would make the model call tools
forever instead of answering with what they returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from riposte.errors import InvalidRequestError

# Responses tool types that name one built-in tool family; dated variants share it.
_WEB_SEARCH_TYPES = ("web_search", "web_search_preview")
_MODES = ("auto", "required")
# Hosted-tool types the SDK's `ToolChoiceTypes` can hold.
_SDK_TOOL_TYPES = ("file_search", "web_search_preview", "web_search_preview_2025_03_11")


@dataclass(frozen=True)
class DeclaredTool:
    """One entry of the request's `tools`, as tool_choice can refer to it."""

    type: str
    function_names: tuple[str, ...]
    server_label: str | None = None


@dataclass(frozen=True)
class ChatToolChoice:
    # The chat `tool_choice` of the first upstream call; None leaves the key out.
    first: Any = None
    # The chat `tool_choice` of later calls of the turn (a forced choice is not repeated).
    later: Any = None
    # When set, only these functions are offered to the model (on every call of the turn).
    allowed_names: frozenset[str] | None = None

    def for_call(self, first: bool) -> Any:
        return self.first if first else self.later

    def offered(self, definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.allowed_names is None:
            return definitions
        return [d for d in definitions if d[d["type"]]["name"] in self.allowed_names]


def resolve_tool_choice(tool_choice: str | Mapping[str, Any] | None, tools: list[DeclaredTool]) -> ChatToolChoice:
    if tool_choice is None:
        return ChatToolChoice()
    if isinstance(tool_choice, str):
        if tool_choice not in ("auto", "none", "required"):
            raise InvalidRequestError(f"Invalid tool_choice '{tool_choice}'.", param="tool_choice")
        if tool_choice == "required":
            _require_tools(tools)  # a call is promised, and there is nothing to call
        if not tools:
            return ChatToolChoice()  # nothing to choose from: there is no tool_choice to send
        return ChatToolChoice(first=tool_choice, later=None if tool_choice == "required" else tool_choice)
    _require_tools(tools)
    kind = tool_choice.get("type")
    if kind == "allowed_tools":
        return _allowed_tools(tool_choice, tools)
    names = _named(tool_choice, tools, "tool_choice")
    if len(names) == 1:
        return ChatToolChoice(first=_function_choice(names[0]))
    # An MCP server without a tool name: one of its tools, whichever the model picks.
    return ChatToolChoice(first="required", allowed_names=frozenset(names))


def echoed_tool_choice(tool_choice: str | Mapping[str, Any] | None) -> Any:
    """The choice as the response object echoes it. The SDK's hosted-tool choice knows only the
    preview names of web search, so `{"type": "web_search"}` is echoed in its equivalent form, a
    required choice among exactly that tool."""
    if isinstance(tool_choice, Mapping) and tool_choice.get("type") not in _SDK_TOOL_TYPES \
            and _family(tool_choice.get("type")) == "web_search":
        return {"type": "allowed_tools", "mode": "required", "tools": [dict(tool_choice)]}
    return tool_choice


def _require_tools(tools: list[DeclaredTool]) -> None:
    if not tools:
        raise InvalidRequestError("tool_choice is set, but no tools were given.", param="tool_choice")


def _allowed_tools(tool_choice: Mapping[str, Any], tools: list[DeclaredTool]) -> ChatToolChoice:
    mode = tool_choice.get("mode", "auto")
    if mode not in _MODES:
        raise InvalidRequestError("tool_choice.mode must be 'auto' or 'required'.", param="tool_choice.mode")
    refs = tool_choice.get("tools")
    if not isinstance(refs, list) or not refs:
        raise InvalidRequestError("allowed_tools needs a non-empty list of 'tools'.", param="tool_choice.tools")
    names: list[str] = []
    for index, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            raise InvalidRequestError("Each allowed tool must be an object.", param=f"tool_choice.tools[{index}]")
        names.extend(_named(ref, tools, f"tool_choice.tools[{index}]"))
    return ChatToolChoice(first=mode, later=None if mode == "required" else mode,
                          allowed_names=frozenset(names))


def _named(ref: Mapping[str, Any], tools: list[DeclaredTool], param: str) -> list[str]:
    """The functions a tool reference stands for; a 400 if it names nothing the request declared."""
    kind = ref.get("type")
    if kind == "function" or (kind == "custom" and "name" in ref):
        return [_function(ref, tools, param)]
    if kind == "mcp":
        return _mcp(ref, tools, param)
    family = _family(kind)
    matching = [t for t in tools if _family(t.type) == family] if family else []
    if not matching:
        raise InvalidRequestError(
            f"tool_choice names a tool of type '{kind}', which is not among the tools.", param=f"{param}.type"
        )
    return _names(matching)


def _function(ref: Mapping[str, Any], tools: list[DeclaredTool], param: str) -> str:
    """A function, or a custom tool (which goes upstream as a function of the same name), by name."""
    name, kind = ref.get("name"), ref.get("type")
    if not any(t.type == kind and name in t.function_names for t in tools):
        raise InvalidRequestError(
            f"tool_choice names {kind} tool '{name}', which is not among the tools.", param=f"{param}.name"
        )
    return str(name)


def _mcp(ref: Mapping[str, Any], tools: list[DeclaredTool], param: str) -> list[str]:
    label = ref.get("server_label")
    servers = [t for t in tools if t.type == "mcp" and t.server_label == label]
    if not servers:
        raise InvalidRequestError(
            f"tool_choice names MCP server '{label}', which is not among the tools.", param=f"{param}.server_label"
        )
    available = _names(servers)
    name = ref.get("name")
    if name is None:
        if not available:
            raise InvalidRequestError(f"MCP server '{label}' offers no tools to choose.", param=param)
        return available
    if name not in available:
        raise InvalidRequestError(
            f"tool_choice names tool '{name}', which MCP server '{label}' does not offer.", param=f"{param}.name"
        )
    return [str(name)]


def _family(kind: object) -> str | None:
    if not isinstance(kind, str) or kind in ("function", "mcp"):
        return None
    return next((family for family in _WEB_SEARCH_TYPES if kind.startswith(family)), kind).replace(
        "web_search_preview", "web_search")


def _names(tools: Iterable[DeclaredTool]) -> list[str]:
    return [name for tool in tools for name in tool.function_names]


def _function_choice(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}
