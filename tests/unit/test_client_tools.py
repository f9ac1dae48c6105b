"""Client tool shapes as pure translation: definitions upstream, items back, history upstream again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai.types.responses import ResponseInputItemParam, ResponseItem, ResponseOutputItem, ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.engine.client_items import chat_tool_call, tool_message_content
from riposte.engine.client_tools import ClientTool, call_item, client_tool_definitions
from riposte.engine.item_models import validate_item
from riposte.engine.items import stored_items
from riposte.engine.request import CreateResponseRequest
from riposte.engine.response_object import new_response_object
from riposte.engine.stream_state import ResponseStream
from riposte.engine.translate import items_to_messages
from riposte.engine.turn_tools import TurnTools, additional_tools_in, build_turn_tools
from riposte.engine.usage import Usage
from riposte.errors import InvalidRequestError
from riposte.testing.grammar import assert_valid_stream, stream_grammar_errors

OUTPUT_ITEM: TypeAdapter[ResponseOutputItem] = TypeAdapter(ResponseOutputItem)
STORED_ITEM: TypeAdapter[ResponseItem] = TypeAdapter(ResponseItem)
EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
INPUT_ITEM: TypeAdapter[ResponseInputItemParam] = TypeAdapter(ResponseInputItemParam)

LARK = {"type": "grammar", "syntax": "lark", "definition": "start: /[a-z]+/"}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": LARK}
SPAWN = {"type": "function", "name": "spawn", "description": "Spawn one.", "parameters": {"type": "object"}}


def build(tools: list[dict[str, Any]], factories: dict[str, Any], **options: Any) -> TurnTools:
    return asyncio.run(build_turn_tools(tools, factories, **options))


def names(tools: list[dict[str, Any]]) -> list[str]:
    return [d[d["type"]]["name"] for d in build(tools, {}).chat_definitions]


def test_custom_tool_goes_upstream_as_a_function_of_one_string_with_the_grammar_described() -> None:
    [definition] = client_tool_definitions(PATCH_TOOL, "tools[0]").chat_definitions
    function = definition["function"]
    assert function["name"] == "apply_patch"
    assert function["parameters"]["required"] == ["input"]
    assert function["parameters"]["properties"]["input"]["type"] == "string"
    assert function["description"].startswith("Edit files.")
    assert "lark grammar" in function["description"] and "start: /[a-z]+/" in function["description"]


def test_custom_tool_with_native_grammar_goes_upstream_as_a_chat_custom_tool() -> None:
    [definition] = client_tool_definitions(PATCH_TOOL, "tools[0]", native_grammar=True).chat_definitions
    assert definition == {"type": "custom", "custom": {
        "name": "apply_patch", "description": "Edit files.",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": "start: /[a-z]+/"}}}}


@pytest.mark.parametrize(("format_", "param"), [
    ({"type": "grammar", "syntax": "ebnf", "definition": "x"}, "tools[0].format.syntax"),
    ({"type": "grammar", "syntax": "regex"}, "tools[0].format.definition"),
    ({"type": "json"}, "tools[0].format.type"),
])
def test_bad_custom_formats_are_400s_naming_the_field(format_: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        build([{"type": "custom", "name": "t", "format": format_}], {})
    assert error.value.param == param


def test_namespace_tools_are_flattened_and_carry_the_namespace_description() -> None:
    tools = [{"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [SPAWN, PATCH_TOOL]}]
    built = build(tools, {})
    assert names(tools) == ["agents__spawn", "agents__apply_patch"]
    assert built.chat_definitions[0]["function"]["description"] == "Sub-agents.\n\nSpawn one."
    assert built.client_shapes["agents__spawn"] == ClientTool("function", "spawn", "agents")
    assert built.client_shapes["agents__apply_patch"] == ClientTool("custom", "apply_patch", "agents")
    assert built.echoed == tools


def test_a_flattened_name_colliding_with_another_tool_is_a_400() -> None:
    tools = [{"type": "function", "name": "agents__spawn"}, {"type": "namespace", "name": "agents",
                                                             "description": "", "tools": [SPAWN]}]
    with pytest.raises(InvalidRequestError) as error:
        build(tools, {})
    assert error.value.param == "tools[1]" and error.value.code == "duplicate_tool_name"


def test_additional_tools_join_the_turn_but_only_client_tools_are_allowed() -> None:
    items = [{"type": "message", "role": "user", "content": "hi"},
             {"type": "additional_tools", "role": "developer", "tools": [SPAWN, {"type": "shell"}]}]
    built = build([], {}, additional_tools=additional_tools_in(items, "input"))
    assert [d["function"]["name"] for d in built.chat_definitions] == ["spawn", "shell"]
    assert built.echoed == []
    with pytest.raises(InvalidRequestError) as error:
        build([], {}, additional_tools=[("input[1].tools[0]", {"type": "file_search"})])
    assert error.value.param == "input[1].tools[0].type"


CALLS = [
    (ClientTool("custom", "apply_patch"), json.dumps({"input": "*** Begin Patch"}),
     {"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch"}),
    (ClientTool("custom", "exec", "functions"), json.dumps({"input": "text(1)"}),
     {"type": "custom_tool_call", "name": "exec", "namespace": "functions", "input": "text(1)"}),
    (ClientTool("function", "spawn", "agents"), '{"n": 1}',
     {"type": "function_call", "name": "spawn", "namespace": "agents", "arguments": '{"n": 1}'}),
    (ClientTool("local_shell", "local_shell"), '{"command": ["ls", "-la"], "timeout_ms": 500}',
     {"type": "local_shell_call", "action": {"type": "exec", "command": ["ls", "-la"], "env": {},
                                             "timeout_ms": 500, "user": None, "working_directory": None}}),
    (ClientTool("shell", "shell"), '{"commands": ["ls", "pwd"]}',
     {"type": "shell_call", "action": {"commands": ["ls", "pwd"], "timeout_ms": None, "max_output_length": None},
      "environment": None}),
    (ClientTool("apply_patch", "apply_patch"), '{"type": "update_file", "path": "a.py", "diff": "@@\\n-a\\n+b"}',
     {"type": "apply_patch_call", "operation": {"type": "update_file", "path": "a.py", "diff": "@@\n-a\n+b"}}),
    (ClientTool("apply_patch", "apply_patch"), '{"type": "delete_file", "path": "a.py"}',
     {"type": "apply_patch_call", "operation": {"type": "delete_file", "path": "a.py"}}),
]


@pytest.mark.parametrize(("shape", "arguments", "expected"), CALLS)
def test_a_call_becomes_its_client_item_and_goes_back_upstream_unchanged(
    shape: ClientTool, arguments: str, expected: dict[str, Any]
) -> None:
    item = call_item(shape, "item_1", "call_1", arguments, "completed")
    assert {k: v for k, v in item.items() if k not in ("id", "call_id", "status")} == expected
    OUTPUT_ITEM.validate_python(item)
    STORED_ITEM.validate_python(item)
    INPUT_ITEM.validate_python(item)
    call = chat_tool_call(item)
    assert call["id"] == "call_1"
    assert call["function"]["name"] == shape.upstream_name
    assert json.loads(call["function"]["arguments"]) == json.loads(arguments)


def test_unreadable_arguments_still_give_well_formed_items() -> None:
    for shape in (ClientTool("local_shell", "local_shell"), ClientTool("shell", "shell"),
                  ClientTool("apply_patch", "apply_patch")):
        OUTPUT_ITEM.validate_python(call_item(shape, "i", "c", "not json", "incomplete"))
    # A model that sent the custom input bare, without the JSON wrapper, still means that input.
    assert call_item(ClientTool("custom", "t"), "i", "c", "raw text", "completed")["input"] == "raw text"


def test_outputs_become_tool_messages() -> None:
    shell_output = {"type": "shell_call_output", "call_id": "c", "output": [
        {"stdout": "hi\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]}
    assert json.loads(str(tool_message_content(shell_output))) == [
        {"stdout": "hi\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]
    patch_output = {"type": "apply_patch_call_output", "call_id": "c", "status": "failed", "output": "no such file"}
    assert json.loads(str(tool_message_content(patch_output))) == {"status": "failed", "output": "no such file"}
    assert tool_message_content({"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}) == "ok"


def test_stored_input_items_parse_as_sdk_items() -> None:
    items = [
        {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        {"type": "local_shell_call", "call_id": "c2", "id": "lsh_1", "status": "completed",
         "action": {"type": "exec", "command": ["ls"], "env": {}}},
        {"type": "local_shell_call_output", "id": "c2", "output": "{}"},
        {"type": "shell_call", "call_id": "c3", "action": {"commands": ["ls"]}},
        {"type": "shell_call_output", "call_id": "c3", "output": [
            {"stdout": "", "stderr": "", "outcome": {"type": "timeout"}}]},
        {"type": "apply_patch_call", "call_id": "c4", "status": "completed",
         "operation": {"type": "delete_file", "path": "a"}},
        {"type": "apply_patch_call_output", "call_id": "c4", "status": "completed"},
        {"type": "additional_tools", "role": "developer", "tools": [SPAWN]},
    ]
    for index, item in enumerate(items):
        validate_item(item, f"input[{index}]", in_input=True)
        INPUT_ITEM.validate_python(item)
    for stored in stored_items(items):
        STORED_ITEM.validate_python(stored)


def test_history_of_client_items_is_calls_then_their_outputs() -> None:
    items = [
        {"type": "message", "role": "user", "content": "go"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "namespace": "functions", "input": "x"},
        {"type": "local_shell_call", "call_id": "c2", "id": "lsh_1", "status": "completed",
         "action": {"type": "exec", "command": ["ls"], "env": {}}},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        {"type": "local_shell_call_output", "id": "c2", "output": '{"output": "a.txt"}'},
        {"type": "additional_tools", "role": "developer", "tools": []},
    ]
    assert items_to_messages(items, []) == [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "functions__exec", "arguments": '{"input": "x"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "assistant", "tool_calls": [{"id": "c2", "type": "function", "function": {
            "name": "local_shell", "arguments": '{"command": ["ls"]}'}}]},
        {"role": "tool", "tool_call_id": "c2", "content": '{"output": "a.txt"}'},
    ]


def test_an_output_without_its_call_is_a_400_naming_it() -> None:
    with pytest.raises(InvalidRequestError) as error:
        items_to_messages([{"type": "shell_call_output", "call_id": "nope", "output": []}], [])
    assert error.value.param == "input[0].call_id"


def tool_call_chunk(index: int, call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    function = {"arguments": arguments} | ({"name": name} if name else {})
    call = {"index": index, "function": function} | ({"id": call_id, "type": "function"} if call_id else {})
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


def test_stream_of_shaped_calls_is_valid_and_parses_as_sdk_events() -> None:
    shapes = build([PATCH_TOOL, {"type": "shell"}, {"type": "namespace", "name": "agents",
                                                                 "description": "", "tools": [SPAWN]}], {})
    stream = ResponseStream(new_response_object(CreateResponseRequest(model="m", input="x"), "resp_1"),
                            frozenset(), client_shapes=shapes.client_shapes)
    events = stream.start()
    patch = json.dumps({"input": "*** Begin Patch\n*** End Patch\n"})
    for chunk in (tool_call_chunk(0, "c0", "apply_patch", patch[:9]), tool_call_chunk(0, None, None, patch[9:]),
                  tool_call_chunk(1, "c1", "shell", '{"commands": '), tool_call_chunk(1, None, None, '["ls"]}'),
                  tool_call_chunk(2, "c2", "agents__spawn", '{"n"'), tool_call_chunk(2, None, None, ': 2}')):
        stream.feed(chunk)
        events += stream.drain()
    stream.finish_call()
    events += stream.drain()
    events += stream.complete(Usage().as_response_usage())
    assert_valid_stream(events)
    for event in events:
        EVENT.validate_python(event)
    kinds = [e["type"] for e in events]
    assert kinds.count("response.custom_tool_call_input.delta") == 1
    assert "response.custom_tool_call_input.done" in kinds
    # Only the namespaced function streams argument deltas.
    assert {e["item_id"] for e in events if e["type"] == "response.function_call_arguments.delta"} == {
        stream.response["output"][2]["id"]}
    custom, shell, spawn = stream.response["output"]
    assert custom["input"] == "*** Begin Patch\n*** End Patch\n" and custom["id"].startswith("ctc_")
    assert shell["action"]["commands"] == ["ls"] and shell["status"] == "completed"
    assert (spawn["name"], spawn["namespace"], spawn["arguments"]) == ("spawn", "agents", '{"n": 2}')


def test_grammar_validator_checks_client_tool_items() -> None:
    shapes = build([PATCH_TOOL, {"type": "namespace", "name": "agents", "description": "", "tools": [SPAWN]}], {})
    stream = ResponseStream(new_response_object(CreateResponseRequest(model="m", input="x"), "resp_1"),
                            frozenset(), client_shapes=shapes.client_shapes)
    events = stream.start()
    for chunk in (tool_call_chunk(0, "c0", "apply_patch", '{"input": "x"}'),
                  tool_call_chunk(1, "c1", "agents__spawn", "{}")):
        stream.feed(chunk)
    stream.finish_call()
    events += stream.drain() + stream.complete(Usage().as_response_usage())
    assert stream_grammar_errors(events) == []

    def renumbered(changed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "sequence_number": n} for n, e in enumerate(changed)]

    no_input_done = renumbered([e for e in events if e["type"] != "response.custom_tool_call_input.done"])
    assert any("without its .done text event" in e for e in stream_grammar_errors(no_input_done))
    moved = [dict(e) for e in events]
    for event in moved:
        if event["type"] == "response.output_item.done" and event["item"]["type"] == "function_call":
            event["item"] = {**event["item"], "namespace": "other"}
    assert any("['namespace'] differ" in e for e in stream_grammar_errors(moved))
    opened = next(n for n, e in enumerate(events) if e["type"] == "response.output_item.added") + 1
    misdirected = renumbered([*events[:opened], {"type": "response.shell_call_command.added", "output_index": 0,
                                                 "command_index": 0, "command": "ls"}, *events[opened:]])
    assert any("expected 'shell_call'" in e for e in stream_grammar_errors(misdirected))
