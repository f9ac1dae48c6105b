"""Tool definitions of a request, as typed models: one model per tool `type` this module knows.

Only the shapes are checked here, before anything else reads the tools; a type without a model
(file_search, mcp, web_search, ...) is left to the tool that builds it (`turn_tools.py`), which
validates its own config or refuses the type. To check a new tool type's shape here, add a model
with `type: Literal["..."]` to `TOOL_MODELS`. Permissive about extra fields, strict about types.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from riposte.errors import InvalidRequestError
from riposte.param_path import Name, invalid_value, join


class ToolModel(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str


class FunctionTool(ToolModel):
    type: Literal["function"]
    name: Name
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(ToolModel):
    type: Literal["custom"]
    name: Name
    description: str | None = None
    # Its values (text, or a lark/regex grammar) are checked where it is translated (client_tools).
    format: dict[str, Any] | None = None


class NamespaceTool(ToolModel):
    type: Literal["namespace"]
    name: Name
    description: str
    tools: list[dict[str, Any]]


class ClientBuiltinTool(ToolModel):
    """local_shell, shell and apply_patch: the client runs them; the definition is just the type."""

    type: Literal["local_shell", "shell", "apply_patch"]


TOOL_MODELS: dict[str, type[ToolModel]] = {
    "function": FunctionTool,
    "custom": CustomTool,
    "namespace": NamespaceTool,
    "local_shell": ClientBuiltinTool,
    "shell": ClientBuiltinTool,
    "apply_patch": ClientBuiltinTool,
}


def validate_tools(tools: list[dict[str, Any]], param: str = "tools") -> None:
    """A 400 naming the JSON path of the first malformed tool definition of a known type."""
    for index, tool in enumerate(tools):
        at = f"{param}[{index}]"
        kind = tool.get("type")
        if not isinstance(kind, str):
            raise InvalidRequestError("Each tool needs a 'type' string.", param=join(at, "type"),
                                      code="missing_required_parameter" if kind is None else "invalid_type")
        model = TOOL_MODELS.get(kind)
        if model is None:
            continue
        try:
            model.model_validate(tool)
        except ValidationError as exc:
            raise invalid_value(exc, tool, at) from exc
