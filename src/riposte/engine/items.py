"""Input items: validation with precise error params, and the stored form `input_items` lists.

Pure functions. The stored form is what the official SDK parses as `ResponseItem`: messages carry
content parts, every item has an `id` and a `status`.
"""

from __future__ import annotations

from typing import Any

from riposte import ids
from riposte.errors import InvalidRequestError

Item = dict[str, Any]

MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
_USER_PART_TYPES = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_PART_TYPES = frozenset({"output_text", "refusal", "input_text"})
SUPPORTED_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning",
                                  "web_search_call"})
# A conversation also holds the tool items of past turns, which clients may add back themselves.
CONVERSATION_ITEM_TYPES = SUPPORTED_ITEM_TYPES | frozenset({
    "file_search_call", "web_search_call", "mcp_list_tools", "mcp_call", "mcp_approval_request",
    "mcp_approval_response",
})
# Item types whose wire form has no `status`.
_STATUSLESS_TYPES = frozenset({"reasoning", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response"})
_ID_PREFIXES = {
    "function_call": "fc", "function_call_output": "fco", "reasoning": "rs", "file_search_call": "fs",
    "web_search_call": "ws", "mcp_list_tools": "mcpl", "mcp_call": "mcp", "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
}


def input_as_items(raw: str | list[dict[str, Any]]) -> list[Item]:
    """The request's `input`, validated, as a list of item dicts (a string is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    for index, item in enumerate(raw):
        validate_item(item, f"input[{index}]")
    return [dict(item) for item in raw]


def item_type(item: Item) -> str:
    # EasyInputMessage may leave out `type`; OpenAI reads it as a message.
    value = item.get("type")
    return value if isinstance(value, str) else "message"


def validate_item(item: Any, param: str, allowed: frozenset[str] = SUPPORTED_ITEM_TYPES) -> None:
    if not isinstance(item, dict):
        raise InvalidRequestError("Each input item must be an object.", param=param)
    kind = item_type(item)
    if kind not in allowed:
        raise InvalidRequestError(
            f"Input items of type '{kind}' are not supported by this server.", param=f"{param}.type",
            code="unsupported_value",
        )
    if kind == "message":
        _validate_message(item, param)
    elif kind == "function_call":
        _require_strings(item, param, ("call_id", "name", "arguments"))
    elif kind == "function_call_output":
        _require_strings(item, param, ("call_id",))
        if not isinstance(item.get("output"), str | list):
            raise InvalidRequestError("function_call_output needs an 'output' string or list.", param=f"{param}.output")
    else:
        _validate_tool_item(item, kind, param)


def _validate_tool_item(item: Item, kind: str, param: str) -> None:
    if kind in ("mcp_call", "mcp_approval_request"):
        _require_strings(item, param, ("name", "arguments", "server_label"))
    elif kind == "mcp_list_tools":
        _require_strings(item, param, ("server_label",))
        _require_list(item, param, "tools")
    elif kind == "mcp_approval_response":
        _require_strings(item, param, ("approval_request_id",))
        if not isinstance(item.get("approve"), bool):
            raise InvalidRequestError("Missing or invalid 'approve': expected a boolean.", param=f"{param}.approve")
    elif kind == "file_search_call":
        _require_list(item, param, "queries")
    elif kind == "web_search_call" and not isinstance(item.get("action"), dict):
        raise InvalidRequestError("Missing or invalid 'action': expected an object.", param=f"{param}.action")


def _validate_message(item: Item, param: str) -> None:
    role = item.get("role")
    if role not in MESSAGE_ROLES:
        raise InvalidRequestError(
            f"Invalid role {role!r}: expected one of {', '.join(sorted(MESSAGE_ROLES))}.", param=f"{param}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequestError("Message content must be a string or a list of parts.", param=f"{param}.content")
    allowed = _ASSISTANT_PART_TYPES if role == "assistant" else _USER_PART_TYPES
    for index, part in enumerate(content):
        _validate_part(part, allowed, f"{param}.content[{index}]")


def _validate_part(part: Any, allowed: frozenset[str], param: str) -> None:
    if not isinstance(part, dict):
        raise InvalidRequestError("Each content part must be an object.", param=param)
    kind = part.get("type")
    if kind not in allowed:
        raise InvalidRequestError(
            f"Invalid content part type {kind!r} here: expected one of {', '.join(sorted(allowed))}.",
            param=f"{param}.type",
        )
    if kind in ("input_text", "output_text"):
        _require_strings(part, param, ("text",))
    elif kind == "refusal":
        _require_strings(part, param, ("refusal",))
    elif kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise InvalidRequestError(
                "input_image needs an 'image_url' (a URL or a data URL); file_id is not supported yet.",
                param=f"{param}.image_url",
            )
    elif kind == "input_file" and not isinstance(part.get("file_data"), str):
        raise InvalidRequestError(
            "input_file needs 'file_data'; file_id and file_url are not supported yet.", param=f"{param}.file_data"
        )


def _require_strings(item: Item, param: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if not isinstance(item.get(key), str):
            raise InvalidRequestError(f"Missing or invalid '{key}': expected a string.", param=f"{param}.{key}")


def _require_list(item: Item, param: str, key: str) -> None:
    if not isinstance(item.get(key), list):
        raise InvalidRequestError(f"Missing or invalid '{key}': expected a list.", param=f"{param}.{key}")


def stored_items(items: list[Item]) -> list[Item]:
    """Items as `input_items` returns them: ids, statuses and content parts filled in."""
    return [_stored_item(item) for item in items]


def _stored_item(item: Item) -> Item:
    kind = item_type(item)
    if kind == "message":
        return _stored_message(item)
    stored = {**item, "type": kind, "id": item.get("id") or _new_item_id(kind)}
    if kind not in _STATUSLESS_TYPES:
        stored.setdefault("status", "completed")
    return stored


def _stored_message(item: Item) -> Item:
    role = item["role"]
    content = item["content"]
    text_type = "output_text" if role == "assistant" else "input_text"
    parts = [{"type": text_type, "text": content}] if isinstance(content, str) else [dict(p) for p in content]
    if role == "assistant":
        parts = [_output_part(p) for p in parts]
    return {
        "id": item.get("id") or ids.message_id(),
        "type": "message",
        "role": role,
        "status": item.get("status") or "completed",
        "content": parts,
    }


def _output_part(part: Item) -> Item:
    if part.get("type") == "input_text":
        part = {"type": "output_text", "text": part["text"]}
    if part.get("type") == "output_text":
        part.setdefault("annotations", [])
        part.setdefault("logprobs", [])
    return part


def _new_item_id(kind: str) -> str:
    return ids.new_id(_ID_PREFIXES.get(kind, "item"))
