"""Client-executed tool shapes: what the model sees for them, and the items its calls become.

A Chat Completions backend only knows function tools. `custom` tools (one freeform string),
`namespace` tools (groups of functions and custom tools), and the built-ins the client runs itself
(`local_shell`, `shell`, `apply_patch`) all go upstream as functions; a call to one of those
functions comes back as the item type the client executes. The way back (a client's `*_call` and
`*_output` items in history) lives in `client_items`. Pure translation, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from riposte.engine.client_items import CUSTOM_INPUT_KEY, upstream_name
from riposte.engine.translate import chat_function_tool
from riposte.errors import InvalidRequestError

ClientToolKind = Literal["function", "custom", "local_shell", "shell", "apply_patch"]
CLIENT_TOOL_TYPES = frozenset({"function", "custom", "namespace", "local_shell", "shell", "apply_patch"})
# The built-ins have one fixed function name each.
BUILTIN_KINDS: frozenset[str] = frozenset({"local_shell", "shell", "apply_patch"})


@dataclass(frozen=True)
class ClientTool:
    """The Responses tool behind one upstream function name."""

    kind: ClientToolKind
    name: str  # the name on output items; for a built-in, its type
    namespace: str | None = None
    # A custom tool whose backend takes the grammar natively: its input streams raw, not as JSON.
    native_custom: bool = False

    @property
    def upstream_name(self) -> str:
        return upstream_name(self.name, self.namespace)


@dataclass(frozen=True)
class ClientToolDefinitions:
    """One request tool (or a namespace of them) as chat definitions and the shapes behind them."""

    chat_definitions: list[dict[str, Any]]
    shapes: list[ClientTool]


def client_tool_definitions(tool: dict[str, Any], param: str, native_grammar: bool = False) -> ClientToolDefinitions:
    """The chat definitions for a client tool of any type in `CLIENT_TOOL_TYPES`."""
    kind = tool.get("type")
    if kind == "namespace":
        return _namespace(tool, param, native_grammar)
    if kind == "function":
        name = _name(tool, param)  # checked here, so the error names the tool's real place
        return _single(chat_function_tool(tool, 0), ClientTool("function", name))
    if kind == "custom":
        shape = ClientTool("custom", _name(tool, param), native_custom=native_grammar)
        return _single(_custom_definition(tool, shape, param), shape)
    if kind in BUILTIN_KINDS:
        return _single(_builtin_definition(str(kind)), ClientTool(kind, str(kind)))
    raise InvalidRequestError(f"Tools of type '{kind}' are not supported here.", param=f"{param}.type",
                              code="unsupported_value")


def _single(definition: dict[str, Any], shape: ClientTool) -> ClientToolDefinitions:
    return ClientToolDefinitions([definition], [shape])


def _name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"A {tool.get('type')} tool needs a 'name'.", param=f"{param}.name")
    return name


def _namespace(tool: dict[str, Any], param: str, native_grammar: bool) -> ClientToolDefinitions:
    namespace = _name(tool, param)
    members = tool.get("tools")
    if not isinstance(members, list) or not members:
        raise InvalidRequestError("A namespace tool needs a non-empty 'tools' list.", param=f"{param}.tools")
    definitions: list[dict[str, Any]] = []
    shapes: list[ClientTool] = []
    for index, member in enumerate(members):
        member_param = f"{param}.tools[{index}]"
        if not isinstance(member, dict) or member.get("type") not in ("function", "custom"):
            raise InvalidRequestError("A namespace holds only function and custom tools.",
                                      param=f"{member_param}.type", code="unsupported_value")
        inner = client_tool_definitions(member, member_param, native_grammar)
        shape = ClientTool(inner.shapes[0].kind, inner.shapes[0].name, namespace, inner.shapes[0].native_custom)
        definitions.append(_renamed(inner.chat_definitions[0], shape.upstream_name, tool.get("description")))
        shapes.append(shape)
    return ClientToolDefinitions(definitions, shapes)


def _renamed(definition: dict[str, Any], name: str, namespace_description: Any) -> dict[str, Any]:
    body = dict(definition[definition["type"]])
    body["name"] = name
    if isinstance(namespace_description, str) and namespace_description:
        # The group's purpose is part of what each member means to the model.
        body["description"] = "\n\n".join(filter(None, [namespace_description, body.get("description")]))
    return {"type": definition["type"], definition["type"]: body}


def _custom_definition(tool: dict[str, Any], shape: ClientTool, param: str) -> dict[str, Any]:
    format_ = tool.get("format") or {"type": "text"}
    grammar = _grammar(format_, f"{param}.format")
    description = tool.get("description") if isinstance(tool.get("description"), str) else None
    if shape.native_custom:
        custom: dict[str, Any] = {"name": shape.name}
        if description:
            custom["description"] = description
        if grammar is not None:
            custom["format"] = {"type": "grammar", "grammar": grammar}
        return {"type": "custom", "custom": custom}
    return {"type": "function", "function": {
        "name": shape.name,
        "description": _described_grammar(description, grammar),
        "parameters": {"type": "object", "properties": {CUSTOM_INPUT_KEY: {
            "type": "string", "description": "The tool's whole input, as free text."}},
            "required": [CUSTOM_INPUT_KEY], "additionalProperties": False},
    }}


def _grammar(format_: Any, param: str) -> dict[str, str] | None:
    kind = format_.get("type") if isinstance(format_, dict) else None
    if kind == "text":
        return None
    if kind != "grammar":
        raise InvalidRequestError(f"Unknown custom tool format {kind!r}: expected 'text' or 'grammar'.",
                                  param=f"{param}.type")
    syntax, definition = format_.get("syntax"), format_.get("definition")
    if syntax not in ("lark", "regex"):
        raise InvalidRequestError(f"Unknown grammar syntax {syntax!r}: expected 'lark' or 'regex'.",
                                  param=f"{param}.syntax")
    if not isinstance(definition, str) or not definition:
        raise InvalidRequestError("A grammar format needs a 'definition'.", param=f"{param}.definition")
    return {"syntax": syntax, "definition": definition}


def _described_grammar(description: str | None, grammar: dict[str, str] | None) -> str:
    """Without constrained decoding, the grammar is the model's instruction for the input."""
    parts = [description] if description else []
    parts.append(f"Call this tool with one argument, `{CUSTOM_INPUT_KEY}`: the tool's input as free text.")
    if grammar is not None:
        parts.append(f"The input must match this {grammar['syntax']} grammar exactly:\n{grammar['definition']}")
    return "\n\n".join(parts)


def _builtin_definition(kind: str) -> dict[str, Any]:
    description, parameters = _BUILTIN_FUNCTIONS[kind]
    return {"type": "function", "function": {"name": kind, "description": description, "parameters": parameters}}


_STRINGS = {"type": "array", "items": {"type": "string"}}
_BUILTIN_FUNCTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "local_shell": ("Run a command on the user's machine. `command` is the argv list.", {
        "type": "object", "properties": {
            "command": _STRINGS, "timeout_ms": {"type": "integer"}, "working_directory": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}}, "user": {"type": "string"}},
        "required": ["command"], "additionalProperties": False}),
    "shell": ("Run shell commands on the user's machine, in order. Each entry of `commands` is one shell "
              "command line.", {
        "type": "object", "properties": {
            "commands": _STRINGS, "timeout_ms": {"type": "integer"}, "max_output_length": {"type": "integer"}},
        "required": ["commands"], "additionalProperties": False}),
    "apply_patch": ("Create, update or delete one file. `diff` is the V4A diff of the change (the whole "
                    "content for create_file; omitted for delete_file).", {
        "type": "object", "properties": {
            "type": {"type": "string", "enum": ["create_file", "update_file", "delete_file"]},
            "path": {"type": "string"}, "diff": {"type": "string"}},
        "required": ["type", "path"], "additionalProperties": False}),
}


# -- calls the model made ------------------------------------------------------------------

ITEM_TYPES: dict[ClientToolKind, str] = {
    "function": "function_call", "custom": "custom_tool_call", "local_shell": "local_shell_call",
    "shell": "shell_call", "apply_patch": "apply_patch_call",
}
ID_PREFIXES: dict[ClientToolKind, str] = {
    "function": "fc", "custom": "ctc", "local_shell": "lsh", "shell": "sh", "apply_patch": "apc",
}


def call_item(shape: ClientTool, item_id: str, call_id: str, arguments: str, status: str) -> dict[str, Any]:
    """The output item for a call to `shape`'s function. Arguments the model got wrong still give a
    well-formed item (empty where unreadable): the client runs it and reports the failure back."""
    item: dict[str, Any] = {"id": item_id, "type": ITEM_TYPES[shape.kind], "call_id": call_id}
    if shape.kind == "function":
        item.update(name=shape.name, arguments=arguments, status=status)
    elif shape.kind == "custom":
        item.update(name=shape.name, input=custom_input(shape, arguments), status=status)
    else:
        item.update(_BUILTIN_FIELDS[shape.kind](_json_object(arguments)), status=_builtin_status(shape, status))
    if shape.namespace is not None:
        item["namespace"] = shape.namespace
    return item


def custom_input(shape: ClientTool, arguments: str) -> str:
    if shape.native_custom:
        return arguments
    value = _json_object(arguments).get(CUSTOM_INPUT_KEY)
    # A model that ignored the wrapper object sent the input itself.
    return value if isinstance(value, str) else arguments


def _builtin_status(shape: ClientTool, status: str) -> str:
    # apply_patch_call knows only in_progress and completed.
    return "in_progress" if shape.kind == "apply_patch" and status == "incomplete" else status


def _json_object(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _local_shell_fields(args: dict[str, Any]) -> dict[str, Any]:
    env = args.get("env")
    return {"action": {
        "type": "exec", "command": _strings(args.get("command")),
        "env": {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
        "timeout_ms": _int_or_none(args.get("timeout_ms")), "user": _str_or_none(args.get("user")),
        "working_directory": _str_or_none(args.get("working_directory")),
    }}


def _shell_fields(args: dict[str, Any]) -> dict[str, Any]:
    return {"action": {
        "commands": _strings(args.get("commands")), "timeout_ms": _int_or_none(args.get("timeout_ms")),
        "max_output_length": _int_or_none(args.get("max_output_length")),
    }, "environment": None}


def _apply_patch_fields(args: dict[str, Any]) -> dict[str, Any]:
    kind = args.get("type") if args.get("type") in ("create_file", "update_file", "delete_file") else "update_file"
    operation: dict[str, Any] = {"type": kind, "path": _str_or_none(args.get("path")) or ""}
    if kind != "delete_file":
        operation["diff"] = _str_or_none(args.get("diff")) or ""
    return {"operation": operation}


_BUILTIN_FIELDS = {"local_shell": _local_shell_fields, "shell": _shell_fields, "apply_patch": _apply_patch_fields}
