"""Pure translation from Responses input items and parameters to Chat Completions shapes.

No I/O here: unit tests check these functions byte for byte against the recordings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riposte.engine.client_items import (
    CALL_ITEM_TYPES,
    OUTPUT_ITEM_TYPES,
    call_id_of,
    chat_tool_call,
    tool_message_content,
)
from riposte.engine.item_models import item_type
from riposte.engine.items import Item
from riposte.engine.request import CreateResponseRequest
from riposte.engine.tool_choice import ChatToolChoice
from riposte.errors import InvalidRequestError

Message = dict[str, Any]

# Items that change what the model may call, not what it has seen: they never become messages.
_NOT_SENT_UPSTREAM = frozenset({"additional_tools"})
_NOT_REPLAYED = frozenset({
    "file_search_call", "web_search_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response",
})


def items_to_messages(items: list[Item], history: list[Message]) -> list[Message]:
    """Chat messages for new input items, to be appended after `history`.

    A function_call becomes its own assistant message, and its output follows it directly; an
    output whose call is in `history` stays where the client put it. A reasoning item rides on the
    next assistant message as `reasoning_content`, which gpt-oss needs to continue tool use.
    """
    items = replayable_items(items)
    known_calls = _call_ids_in(history) | {call_id_of(i) for i in items if item_type(i) in CALL_ITEM_TYPES}
    outputs_by_call = _outputs_with_calls_in(items)
    messages: list[Message] = []
    pending_reasoning: str | None = None
    for index, item in enumerate(items):
        kind = item_type(item)
        if kind in _NOT_SENT_UPSTREAM:
            continue
        if kind == "reasoning":
            pending_reasoning = _reasoning_text(item)
            continue
        if kind == "web_search_call":
            # A search that already ran on the server: the assistant message after it says what the
            # model made of it, and the upstream model has no result to pair the call with.
            continue
        if kind in OUTPUT_ITEM_TYPES:
            call_id = call_id_of(item)
            if call_id not in known_calls:
                raise InvalidRequestError(
                    f"No tool call found for {kind} with call_id {call_id}.",
                    param=f"input[{index}].call_id",
                )
            if call_id not in outputs_by_call:
                messages.append(_tool_message(item))
            continue
        is_call = kind in CALL_ITEM_TYPES
        message = _function_call_message(item) if is_call else _message(item)
        if pending_reasoning is not None and message["role"] == "assistant":
            message["reasoning_content"] = pending_reasoning
            pending_reasoning = None
        messages.append(message)
        if is_call and call_id_of(item) in outputs_by_call:
            messages.append(_tool_message(outputs_by_call[call_id_of(item)]))
    return messages


def replayable_items(items: list[Item]) -> list[Item]:
    """Items as the translation understands them. Server tool items whose work is done go
    nowhere (what the model concluded from them follows as a message, and the listing and approval
    items are the tools' own business); an MCP call that ran is the call and its result."""
    replayable: list[Item] = []
    for item in items:
        kind = item_type(item)
        if kind in _NOT_REPLAYED:
            continue
        if kind == "mcp_call":
            result = item.get("output") if item.get("output") is not None else item.get("error")
            replayable.append({"type": "function_call", "call_id": item["id"], "name": item["name"],
                               "arguments": item["arguments"]})
            replayable.append({"type": "function_call_output", "call_id": item["id"], "output": _as_text(result)})
        else:
            replayable.append(item)
    return replayable


def _as_text(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return str(value.get("message", value)) if isinstance(value, dict) else str(value)


def _call_ids_in(history: list[Message]) -> set[str]:
    return {call["id"] for m in history for call in (m.get("tool_calls") or [])}


def _outputs_with_calls_in(items: list[Item]) -> dict[str, Item]:
    calls = {call_id_of(i) for i in items if item_type(i) in CALL_ITEM_TYPES}
    return {call_id_of(i): i for i in items if item_type(i) in OUTPUT_ITEM_TYPES and call_id_of(i) in calls}


def _message(item: Item) -> Message:
    role = item["role"]
    content = item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    refusal = next((p["refusal"] for p in content if p.get("type") == "refusal"), None)
    parts = [_chat_part(p) for p in content if p.get("type") != "refusal"]
    message: Message = {"role": role, "content": parts}
    if refusal is not None:
        message["refusal"] = refusal
    return message


def _chat_part(part: Item) -> dict[str, Any]:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        return {"type": "image_url", "image_url": {"url": part["image_url"], "detail": part.get("detail") or "auto"}}
    file: dict[str, Any] = {"file_data": part["file_data"]}
    if part.get("filename"):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _function_call_message(item: Item) -> Message:
    return {"role": "assistant", "tool_calls": [chat_tool_call(item)]}


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_message(item: Item) -> Message:
    output = tool_message_content(item)
    if isinstance(output, list):
        output = [_chat_part(p) for p in output if p.get("type") in ("input_text", "input_image", "input_file")]
    return {"role": "tool", "tool_call_id": call_id_of(item), "content": output}


def _reasoning_text(item: Item) -> str:
    pieces = [p.get("text", "") for p in (item.get("content") or []) if isinstance(p, dict)]
    if not any(pieces):
        pieces = [p.get("text", "") for p in (item.get("summary") or []) if isinstance(p, dict)]
    return "".join(pieces)


def chat_function_tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    """A Responses function tool as a standard chat tool definition."""
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("A function tool needs a 'name'.", param=f"tools[{index}].name")
    function: dict[str, Any] = {"name": name}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def echoed_function_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {"parameters": None, "strict": None, "description": None, **tool}


def chat_tool_choice(tool_choice: str | dict[str, Any], tool_names: set[str]) -> Any:
    if isinstance(tool_choice, str):
        if tool_choice not in ("auto", "none", "required"):
            raise InvalidRequestError(f"Invalid tool_choice '{tool_choice}'.", param="tool_choice")
        return tool_choice
    if tool_choice.get("type") == "function" and isinstance(tool_choice.get("name"), str):
        if tool_choice["name"] not in tool_names:
            raise InvalidRequestError(
                f"tool_choice names function '{tool_choice['name']}', which is not among the tools.",
                param="tool_choice.name",
            )
        return {"type": "function", "function": {"name": tool_choice["name"]}}
    raise InvalidRequestError(
        f"tool_choice of type '{tool_choice.get('type')}' is not supported.", param="tool_choice.type"
    )


def response_format(text: Mapping[str, Any]) -> dict[str, Any] | None:
    format_ = text.get("format")
    if format_ is None:
        return None
    kind = format_.get("type") if isinstance(format_, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        if not isinstance(format_.get("name"), str) or not isinstance(format_.get("schema"), dict):
            raise InvalidRequestError("json_schema format needs a 'name' and a 'schema'.", param="text.format")
        schema: dict[str, Any] = {"name": format_["name"], "schema": format_["schema"]}
        for key in ("description", "strict"):
            if format_.get(key) is not None:
                schema[key] = format_[key]
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(f"Unknown text.format type {kind!r}.", param="text.format.type")


def chat_request_body(
    request: CreateResponseRequest,
    upstream_model: str,
    messages: list[Message],
    *,
    tools: list[dict[str, Any]] | None = None,
    max_tokens_param: str = "max_completion_tokens",
    tool_choice: ChatToolChoice | None = None,
    first_call: bool = True,
    supports_verbosity: bool = False,
) -> dict[str, Any]:
    """The chat-completions body for one upstream call. Optional keys appear only when given,
    because the recordings (and strict backends) expect exactly the keys that were set."""
    body: dict[str, Any] = {"model": upstream_model, "messages": messages, "stream": True,
                            "stream_options": {"include_usage": True}}
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        max_tokens_param: request.max_output_tokens,
        "user": request.user,
        "safety_identifier": request.safety_identifier,
        "prompt_cache_key": request.prompt_cache_key,
        "service_tier": request.service_tier,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.top_logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    if request.text is not None and (format_ := response_format(request.text)) is not None:
        body["response_format"] = format_
    verbosity = (request.text or {}).get("verbosity")
    if verbosity is not None and supports_verbosity:
        body["verbosity"] = verbosity
    effort = (request.reasoning or {}).get("effort")
    if effort is not None:
        body["reasoning_effort"] = effort
    if tools is None:
        tools = [chat_function_tool(tool, index) for index, tool in enumerate(request.tools or [])
                 if tool.get("type") == "function"]
    if tool_choice is not None:
        _add_chosen_tools(body, request, tool_choice.offered(tools), tool_choice.for_call(first_call))
    else:
        _add_tools(body, request, tools)
    return body


def _add_chosen_tools(body: dict[str, Any], request: CreateResponseRequest, tools: list[dict[str, Any]],
                      choice: Any) -> None:
    if not tools:
        return
    body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls


def _add_tools(body: dict[str, Any], request: CreateResponseRequest, tools: list[dict[str, Any]]) -> None:
    if not tools:
        if isinstance(request.tool_choice, dict):
            raise InvalidRequestError("tool_choice names a tool, but no tools were given.", param="tool_choice")
        return
    body["tools"] = tools
    if request.tool_choice is not None:
        names = {t[t["type"]]["name"] for t in tools}
        body["tool_choice"] = chat_tool_choice(request.tool_choice, names)
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls
