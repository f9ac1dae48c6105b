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
SUPPORTED_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"})


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


def validate_item(item: Any, param: str) -> None:
    if not isinstance(item, dict):
        raise InvalidRequestError("Each input item must be an object.", param=param)
    kind = item_type(item)
    if kind not in SUPPORTED_ITEM_TYPES:
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


def stored_items(items: list[Item]) -> list[Item]:
    """Items as `input_items` returns them: ids, statuses and content parts filled in."""
    return [_stored_item(item) for item in items]


def _stored_item(item: Item) -> Item:
    kind = item_type(item)
    if kind == "message":
        return _stored_message(item)
    stored = {**item, "type": kind}
    stored.setdefault("id", _new_item_id(kind))
    if kind != "reasoning":
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
    prefixes = {"function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}
    return ids.new_id(prefixes.get(kind, "item"))
