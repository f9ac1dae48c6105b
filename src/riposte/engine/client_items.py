"""Client tool items in history, as chat messages: the way back for `client_tools`.

A `custom_tool_call`, `local_shell_call`, `shell_call` or `apply_patch_call` (or a namespaced
`function_call`) becomes the assistant tool call the model made, under the function name it saw;
its `*_output` item becomes the tool message. Pure translation, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

Item = dict[str, Any]

# Joins a namespace and a tool name into one function name (`.` is not allowed in function names).
NAMESPACE_SEPARATOR = "__"
# A custom tool's function takes its freeform input as this one string argument.
CUSTOM_INPUT_KEY = "input"

CALL_ITEM_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call", "shell_call",
                             "apply_patch_call"})
OUTPUT_ITEM_TYPES = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output",
                               "shell_call_output", "apply_patch_call_output"})


def upstream_name(name: str, namespace: str | None) -> str:
    """The function name the model sees for a (possibly namespaced) tool."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def call_id_of(item: Item) -> str:
    """The call id of a call item, or the call an output item answers."""
    if item.get("type") == "local_shell_call_output":
        # Its `id` is the id of the call it answers; accept `call_id` too, as clients send both.
        return str(item.get("call_id") or item.get("id"))
    return str(item["call_id"])


def chat_tool_call(item: Item) -> dict[str, Any]:
    """The chat tool call for a call item, as the model produced it."""
    kind = item.get("type")
    if kind == "function_call":
        name, arguments = upstream_name(item["name"], item.get("namespace")), item["arguments"]
    elif kind == "custom_tool_call":
        name = upstream_name(item["name"], item.get("namespace"))
        arguments = json.dumps({CUSTOM_INPUT_KEY: item["input"]})
    elif kind == "local_shell_call":
        name, arguments = "local_shell", _arguments(item["action"], drop=("type",))
    elif kind == "shell_call":
        name, arguments = "shell", _arguments(item["action"])
    else:
        name, arguments = "apply_patch", _arguments(item["operation"])
    return {"id": call_id_of(item), "type": "function", "function": {"name": name, "arguments": arguments}}


def _arguments(fields: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
    """The function arguments that produced these item fields (the item fills unset ones with null)."""
    return json.dumps({k: v for k, v in fields.items() if v is not None and v != {} and k not in drop})


def native_custom_calls(messages: list[dict[str, Any]], custom_names: frozenset[str]) -> list[dict[str, Any]]:
    """History keeps every call in function form; a backend with native custom tools wants its
    custom tools' calls as `{"type": "custom", "custom": {"name", "input"}}`."""
    if not custom_names:
        return messages
    return [_with_native_custom_calls(m, custom_names) if m.get("tool_calls") else m for m in messages]


def _with_native_custom_calls(message: dict[str, Any], custom_names: frozenset[str]) -> dict[str, Any]:
    calls = []
    for call in message["tool_calls"]:
        function = call.get("function") or {}
        if call.get("type") == "function" and function.get("name") in custom_names:
            text = json.loads(function["arguments"]).get(CUSTOM_INPUT_KEY, "")
            call = {"id": call["id"], "type": "custom", "custom": {"name": function["name"], "input": text}}
        calls.append(call)
    return {**message, "tool_calls": calls}


def tool_message_content(item: Item) -> str | list[dict[str, Any]]:
    """What the model reads as the result of the call an output item answers."""
    kind = item.get("type")
    if kind == "shell_call_output":
        return json.dumps([_shell_output(entry) for entry in item["output"]])
    if kind == "apply_patch_call_output":
        result = {"status": item["status"]}
        if item.get("output"):
            result["output"] = item["output"]
        return json.dumps(result)
    output: str | list[dict[str, Any]] = item["output"]
    return output


def _shell_output(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry.get(key) for key in ("stdout", "stderr", "outcome")}
