"""Input items as typed models: one pydantic model per item `type`, dispatched on that tag.

This is the one place that says what an input item (of `POST /v1/responses` `input`, or of a
conversation) may look like. To accept a new item type, add a model here with
`type: Literal["..."]` and list it in `ITEM_MODELS`; its class variables say how the server mints
its id, whether its stored form has a `status`, and whether a Responses `input` may hold it (that
is, whether translation knows how to send it upstream; a conversation holds every type).

The models only validate: translation and storage keep working on the client's own dicts, so the
chat request sent upstream is exactly what it was. They are permissive about extra fields, as
OpenAI is (the SDKs send `id`, `status` and fields newer than this server), and strict about
types: a number is not a string, and `{}` is not a role.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from riposte.engine.tool_models import validate_tools
from riposte.errors import InvalidRequestError
from riposte.param_path import Name, invalid_value, join, printable

# Stored item ids share the conversation_items.id column (VARCHAR(100)); PostgreSQL enforces the
# length and SQLite does not, so the limit is checked here, the same for both.
MAX_ITEM_ID_LENGTH = 100

ItemId = Annotated[str, Field(max_length=MAX_ITEM_ID_LENGTH), printable]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


def _tag_of(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _content_shape(value: Any) -> str | None:
    return "text" if isinstance(value, str) else "parts" if isinstance(value, list) else None


# Content parts.

class InputText(_Model):
    type: Literal["input_text"]
    text: str


class OutputText(_Model):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class Refusal(_Model):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Model):
    type: Literal["input_image"]
    image_url: str = Field(description="a URL or a data URL; file_id is not supported yet")
    detail: Literal["low", "high", "auto", "original"] | None = None


class InputFile(_Model):
    type: Literal["input_file"]
    file_data: str = Field(description="file_id and file_url are not supported yet")
    filename: str | None = None


ContentPart = Annotated[
    Annotated[InputText, Tag("input_text")] | Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")] | Annotated[InputImage, Tag("input_image")]
    | Annotated[InputFile, Tag("input_file")],
    Discriminator(_tag_of),
]
# A string, or a list of content parts.
Content = Annotated[
    Annotated[str, Tag("text")] | Annotated[list[ContentPart], Tag("parts")],
    Discriminator(_content_shape, custom_error_type="invalid_content",
                  custom_error_message="expected a string or a list of content parts"),
]
_USER_PARTS = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_PARTS = frozenset({"output_text", "refusal", "input_text"})


# Items.

class ItemModel(_Model):
    """What every item may carry. Subclasses set `type` and their own fields."""

    # The prefix of ids the server mints for items of this type.
    id_prefix: ClassVar[str] = "item"
    # Whether the stored (wire) form has a `status`.
    has_status: ClassVar[bool] = True
    # Whether a Responses `input` may hold the item: translation can send it upstream.
    accepted_in_input: ClassVar[bool] = False

    type: str
    id: ItemId | None = None
    status: str | None = None

    def check(self, param: str) -> None:
        """Rules across fields, beyond what the field types say; raise a 400 naming the param."""


class Message(ItemModel):
    id_prefix = "msg"
    accepted_in_input = True

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Content

    def check(self, param: str) -> None:
        if isinstance(self.content, str):
            return
        allowed = _ASSISTANT_PARTS if self.role == "assistant" else _USER_PARTS
        for index, part in enumerate(self.content):
            if part.type not in allowed:
                raise InvalidRequestError(
                    f"Content parts of type '{part.type}' cannot appear in a {self.role} message: expected one of "
                    f"{', '.join(sorted(allowed))}.", param=f"{param}.content[{index}].type", code="invalid_value",
                )


class FunctionCall(ItemModel):
    id_prefix = "fc"
    accepted_in_input = True

    type: Literal["function_call"]
    call_id: Name
    name: Name
    arguments: str


class FunctionCallOutput(ItemModel):
    id_prefix = "fco"
    accepted_in_input = True

    type: Literal["function_call_output"]
    call_id: Name
    output: Content

    def check(self, param: str) -> None:
        _check_output_parts(self.type, self.output, param)


def _check_output_parts(kind: str, output: Any, param: str) -> None:
    for index, part in enumerate(output if isinstance(output, list) else []):
        if part.type not in _USER_PARTS:
            raise InvalidRequestError(
                f"{kind} parts of type '{part.type}' are not allowed: expected one of "
                f"{', '.join(sorted(_USER_PARTS))}.", param=f"{param}.output[{index}].type", code="invalid_value",
            )


class SummaryText(_Model):
    type: Literal["summary_text"]
    text: str


class ReasoningText(_Model):
    type: Literal["reasoning_text"]
    text: str


class Reasoning(ItemModel):
    id_prefix = "rs"
    has_status = False
    accepted_in_input = True

    type: Literal["reasoning"]
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class Compaction(ItemModel):
    """A sealed summary (engine/compaction_items.py); opened, checked and expanded before translation."""

    id_prefix = "cmp"
    has_status = False
    accepted_in_input = True

    type: Literal["compaction"]
    encrypted_content: str
    created_by: str | None = None


class FileSearchCall(ItemModel):
    id_prefix = "fs"

    type: Literal["file_search_call"]
    queries: list[str]
    results: list[dict[str, Any]] | None = None


class WebSearchCall(ItemModel):
    id_prefix = "ws"
    accepted_in_input = True

    type: Literal["web_search_call"]
    action: dict[str, Any]


class McpListTools(ItemModel):
    id_prefix = "mcpl"
    accepted_in_input = True  # clients that carry the history send MCP items back (the Agents SDK)
    has_status = False

    type: Literal["mcp_list_tools"]
    server_label: str
    tools: list[dict[str, Any]]
    error: str | None = None


class McpCall(ItemModel):
    id_prefix = "mcp"
    accepted_in_input = True  # clients that carry the history send MCP items back (the Agents SDK)

    type: Literal["mcp_call"]
    name: str
    arguments: str
    server_label: str
    output: str | None = None
    error: str | dict[str, Any] | None = None


class McpApprovalRequest(ItemModel):
    id_prefix = "mcpr"
    accepted_in_input = True  # clients that carry the history send MCP items back (the Agents SDK)
    has_status = False

    type: Literal["mcp_approval_request"]
    name: str
    arguments: str
    server_label: str


class McpApprovalResponse(ItemModel):
    id_prefix = "mcpa"
    accepted_in_input = True  # clients that carry the history send MCP items back (the Agents SDK)
    has_status = False

    type: Literal["mcp_approval_response"]
    approval_request_id: str
    approve: bool
    reason: str | None = None


# Client tool calls and their outputs (engine/client_tools.py, engine/client_items.py), with the
# fields translation reads; the rest is the client's business and passes through.

class CustomToolCall(ItemModel):
    id_prefix = "ctc"
    accepted_in_input = True

    type: Literal["custom_tool_call"]
    call_id: Name
    name: Name
    input: str
    namespace: Name | None = None


class CustomToolCallOutput(ItemModel):
    id_prefix = "ctco"
    accepted_in_input = True

    type: Literal["custom_tool_call_output"]
    call_id: Name
    output: Content

    def check(self, param: str) -> None:
        _check_output_parts(self.type, self.output, param)


class LocalShellAction(_Model):
    type: Literal["exec"]
    command: list[str]
    env: dict[str, str] | None = None
    timeout_ms: int | None = None
    user: str | None = None
    working_directory: str | None = None


class LocalShellCall(ItemModel):
    id_prefix = "lsh"
    accepted_in_input = True

    type: Literal["local_shell_call"]
    call_id: Name
    action: LocalShellAction


class LocalShellCallOutput(ItemModel):
    """Its `id` is the id of the call it answers (OpenAI's shape); `call_id` is accepted too."""

    id_prefix = "lsho"
    accepted_in_input = True

    type: Literal["local_shell_call_output"]
    call_id: Name | None = None
    output: str

    def check(self, param: str) -> None:
        if self.call_id is None and self.id is None:
            raise InvalidRequestError("local_shell_call_output needs the 'id' of the call it answers.",
                                      param=f"{param}.id", code="missing_required_parameter")


class ShellAction(_Model):
    commands: list[str]
    timeout_ms: int | None = None
    max_output_length: int | None = None


class ShellCall(ItemModel):
    id_prefix = "sh"
    accepted_in_input = True

    type: Literal["shell_call"]
    call_id: Name
    action: ShellAction


class ShellOutputChunk(_Model):
    stdout: str
    stderr: str
    outcome: dict[str, Any]


class ShellCallOutput(ItemModel):
    id_prefix = "sho"
    accepted_in_input = True

    type: Literal["shell_call_output"]
    call_id: Name
    output: list[ShellOutputChunk]
    max_output_length: int | None = None


class ApplyPatchOperation(_Model):
    type: Literal["create_file", "update_file", "delete_file"]
    path: str
    diff: str | None = None


class ApplyPatchCall(ItemModel):
    id_prefix = "apc"
    accepted_in_input = True

    type: Literal["apply_patch_call"]
    call_id: Name
    operation: ApplyPatchOperation


class ApplyPatchCallOutput(ItemModel):
    id_prefix = "apco"
    accepted_in_input = True

    type: Literal["apply_patch_call_output"]
    call_id: Name
    status: Literal["completed", "failed"]  # required here, and only these two
    output: str | None = None


class AdditionalTools(ItemModel):
    """Client tools made available from this item on (`engine/turn_tools.additional_tools_in`)."""

    id_prefix = "at"
    has_status = False
    accepted_in_input = True

    type: Literal["additional_tools"]
    role: Literal["developer"]
    tools: list[dict[str, Any]]

    def check(self, param: str) -> None:
        # Checked as a request's own tools are, in a request's input or added to a conversation:
        # a turn offers them to the model alike.
        validate_tools(self.tools, join(param, "tools"))


# Every item type the server knows, by its `type` tag.
class ItemReference(_Model):
    """`{"type": "item_reference", "id": ...}` in a Responses `input`: a pointer to a stored item,
    replaced by that item before the input is validated (engine/item_references.py). Not in
    ITEM_MODELS, since it is never stored itself and a conversation cannot hold it."""

    type: Literal["item_reference"]
    id: ItemId


ITEM_MODELS: dict[str, type[ItemModel]] = {
    "message": Message,
    "function_call": FunctionCall,
    "function_call_output": FunctionCallOutput,
    "reasoning": Reasoning,
    "compaction": Compaction,
    "file_search_call": FileSearchCall,
    "web_search_call": WebSearchCall,
    "mcp_list_tools": McpListTools,
    "mcp_call": McpCall,
    "mcp_approval_request": McpApprovalRequest,
    "mcp_approval_response": McpApprovalResponse,
    "custom_tool_call": CustomToolCall,
    "custom_tool_call_output": CustomToolCallOutput,
    "local_shell_call": LocalShellCall,
    "local_shell_call_output": LocalShellCallOutput,
    "shell_call": ShellCall,
    "shell_call_output": ShellCallOutput,
    "apply_patch_call": ApplyPatchCall,
    "apply_patch_call_output": ApplyPatchCallOutput,
    "additional_tools": AdditionalTools,
}


def item_type(item: dict[str, Any]) -> str:
    """The item's tag. An item without `type` is a message, as OpenAI reads EasyInputMessage."""
    value = item.get("type")
    return value if isinstance(value, str) else "message"


def validate_reference(item: dict[str, Any], param: str) -> ItemReference:
    """An item_reference, or a 400 naming the JSON path of its bad field."""
    try:
        return ItemReference.model_validate(item)
    except ValidationError as exc:
        raise invalid_value(exc, item, param) from exc


def validate_item(item: Any, param: str, *, in_input: bool) -> ItemModel:
    """The item as its typed model, or a 400 naming the JSON path of the first bad field.

    `in_input`: the item is in a Responses `input`, where only types translation can send upstream
    are accepted; otherwise it is added to a conversation, which holds every known type.
    """
    if not isinstance(item, dict):
        raise InvalidRequestError("Each input item must be an object.", param=param, code="invalid_type")
    kind = item.get("type")
    if kind is not None and not isinstance(kind, str):
        raise InvalidRequestError("An item's 'type' must be a string.", param=join(param, "type"),
                                  code="invalid_type")
    model = ITEM_MODELS.get(item_type(item))
    if model is None or (in_input and not model.accepted_in_input):
        raise InvalidRequestError(
            f"Input items of type '{item_type(item)}' are not supported by this server.", param=join(param, "type"),
            code="unsupported_value",
        )
    try:
        validated = model.model_validate(item)
    except ValidationError as exc:
        raise invalid_value(exc, item, param) from exc
    validated.check(param)
    return validated

