"""Tool definitions of a request, as typed models: one model per tool `type` this module knows.

Only the shapes are checked here, before anything else reads the tools; a type without a model
(file_search, mcp, web_search, ...) is left to the tool that builds it (`turn_tools.py`), which
validates its own config or refuses the type. To check a new tool type's shape here, add a model
with `type: Literal["..."]` to `TOOL_MODELS`. Permissive about extra fields, strict about types.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from riposte.errors import InvalidRequestError
from riposte.param_path import invalid_value, join

# OpenAI's contract for the names of the tools a request declares (function and custom tools, up
# to 128 characters; namespaces, up to 64): OpenAI refuses any other name with a 400. Checked here
# so that a client which works against this server works against OpenAI too: a backend such as
# vLLM takes a dotted name, and a client built on that would break the day it moved. The names
# the server gives its own tools (MCP, file_search) are not the client's to write.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]+")
TOOL_NAME_MAX = 128
NAMESPACE_NAME_MAX = 64


def _tool_name(limit: int) -> AfterValidator:
    def check(name: str) -> str:
        if len(name) > limit or _TOOL_NAME.fullmatch(name) is None:
            raise ValueError(f"expected 1 to {limit} letters, digits, underscores or dashes "
                             f"(the pattern '^[a-zA-Z0-9_-]+$')")
        return name
    return AfterValidator(check)


ToolName = Annotated[str, _tool_name(TOOL_NAME_MAX)]
NamespaceName = Annotated[str, _tool_name(NAMESPACE_NAME_MAX)]


class ToolModel(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    type: str


class FunctionTool(ToolModel):
    type: Literal["function"]
    name: ToolName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomTool(ToolModel):
    type: Literal["custom"]
    name: ToolName
    description: str | None = None
    # Its values (text, or a lark/regex grammar) are checked where it is translated (client_tools).
    format: dict[str, Any] | None = None


class NamespaceTool(ToolModel):
    type: Literal["namespace"]
    name: NamespaceName
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
            validated = model.model_validate(tool)
        except ValidationError as exc:
            raise invalid_value(exc, tool, at) from exc
        if isinstance(validated, NamespaceTool):
            # Its members are function and custom tools, checked as any other (`client_tools`
            # refuses a member of another type).
            validate_tools(validated.tools, join(at, "tools"))
