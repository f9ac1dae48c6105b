"""custom, namespace, local_shell, shell and apply_patch tools through a real server and scripted
upstream: what goes upstream, the items and events that come back, and the client's outputs in
history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from riposte.config import ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import Reply, ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import sdk, stream_events, strict_create

PATCH_GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": "start: BEGIN /[\\s\\S]+/\nBEGIN: \"*** Begin\""}
CUSTOM_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": PATCH_GRAMMAR}
NAMESPACE_TOOL = {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [
    {"type": "function", "name": "spawn", "description": "Start one.",
     "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}]}


def test_custom_tool_call_streams_its_input_and_its_output_goes_back_as_a_tool_message(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    upstream.enqueue(tool_calls_reply([("call_p", "apply_patch", json.dumps({"input": patch}))]),
                     text_reply("Patched."))
    events = stream_events(fake_server, model="fake/m", input="Add a.txt", tools=[CUSTOM_TOOL])

    assert_valid_stream(events)
    [function] = upstream.requests[0]["tools"]
    assert function["function"]["name"] == "apply_patch"
    assert PATCH_GRAMMAR["definition"] in function["function"]["description"]
    kinds = [e.type for e in events]
    assert "response.custom_tool_call_input.delta" in kinds and "response.custom_tool_call_input.done" in kinds
    final = events[-1].response
    [call] = final.output
    assert (call.type, call.call_id, call.name, call.input) == ("custom_tool_call", "call_p", "apply_patch", patch)
    assert final.tools[0].type == "custom"

    second = strict_create(fake_server, model="fake/m", previous_response_id=final.id, tools=[CUSTOM_TOOL],
                           input=[{"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"}])
    assert second.output_text == "Patched."
    assert upstream.requests[1]["messages"][-2:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_p", "type": "function", "function": {
            "name": "apply_patch", "arguments": json.dumps({"input": patch})}}]},
        {"role": "tool", "tool_call_id": "call_p", "content": "Done!"},
    ]
    listed = sdk(fake_server).responses.input_items.list(second.id, order="asc").data
    assert [i.type for i in listed] == ["message", "custom_tool_call", "custom_tool_call_output"]


def test_namespace_call_comes_back_with_its_namespace_and_replays_under_the_flat_name(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_s", "agents__spawn", '{"task": "x"}')]), text_reply("Spawned."))
    events = stream_events(fake_server, model="fake/m", input="Spawn", tools=[NAMESPACE_TOOL], store=False)

    assert_valid_stream(events)
    assert [t["function"]["name"] for t in upstream.requests[0]["tools"]] == ["agents__spawn"]
    [call] = events[-1].response.output
    assert (call.type, call.name, call.namespace, call.arguments) == ("function_call", "spawn", "agents",
                                                                      '{"task": "x"}')
    # store: false, so the client sends the whole history back, as Codex does.
    history = [{"type": "message", "role": "user", "content": "Spawn"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": "call_s", "output": "agent 7"}]
    strict_create(fake_server, model="fake/m", input=history, tools=[NAMESPACE_TOOL], store=False)
    assert upstream.requests[1]["messages"][1]["tool_calls"][0]["function"]["name"] == "agents__spawn"


BUILTINS = [
    ("local_shell", '{"command": ["ls", "-a"]}', "local_shell_call",
     {"type": "local_shell_call_output", "id": "call_b", "output": '{"stdout": "a.txt"}'}, '{"stdout": "a.txt"}'),
    ("shell", '{"commands": ["ls -a"], "timeout_ms": 1000}', "shell_call",
     {"type": "shell_call_output", "call_id": "call_b", "output": [
         {"stdout": "a.txt\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
     '[{"stdout": "a.txt\\n", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]'),
    ("apply_patch", '{"type": "create_file", "path": "a.txt", "diff": "+hi"}', "apply_patch_call",
     {"type": "apply_patch_call_output", "call_id": "call_b", "status": "completed", "output": "created"},
     '{"status": "completed", "output": "created"}'),
]


@pytest.mark.parametrize(("tool_type", "arguments", "item_type", "output_item", "tool_content"), BUILTINS)
def test_client_builtin_round_trip(
    fake_server: RunningServer, upstream: ScriptedUpstream,
    tool_type: str, arguments: str, item_type: str, output_item: dict[str, Any], tool_content: str,
) -> None:
    upstream.enqueue(tool_calls_reply([("call_b", tool_type, arguments)]), text_reply("There is a.txt."))
    events = stream_events(fake_server, model="fake/m", input="List files", tools=[{"type": tool_type}])

    assert_valid_stream(events)
    [definition] = upstream.requests[0]["tools"]
    assert definition["function"]["name"] == tool_type
    final = events[-1].response
    [call] = final.output
    assert (call.type, call.call_id, call.status) == (item_type, "call_b", "completed")

    second = strict_create(fake_server, model="fake/m", previous_response_id=final.id,
                           tools=[{"type": tool_type}], input=[output_item])
    assert second.output_text == "There is a.txt."
    sent = upstream.requests[1]["messages"]
    assert sent[-2]["tool_calls"][0]["function"] == {"name": tool_type, "arguments": arguments}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_b", "content": tool_content}


def test_additional_tools_item_adds_client_tools_for_the_turn(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_e", "functions__exec", json.dumps({"input": "text(1)"}))]))
    additional = {"type": "additional_tools", "role": "developer", "tools": [
        {"type": "namespace", "name": "functions", "description": "", "tools": [
            {"type": "custom", "name": "exec", "description": "Run JavaScript."}]}]}
    response = strict_create(fake_server, model="fake/m",
                             input=[additional, {"type": "message", "role": "user", "content": "go"}])

    assert [t["function"]["name"] for t in upstream.requests[0]["tools"]] == ["functions__exec"]
    assert upstream.requests[0]["messages"] == [{"role": "user", "content": "go"}]
    [call] = response.output
    assert (call.type, call.name, call.namespace, call.input) == ("custom_tool_call", "exec", "functions", "text(1)")
    assert response.tools == []
    listed = sdk(fake_server).responses.input_items.list(response.id, order="asc").data
    assert [i.type for i in listed] == ["additional_tools", "message"]


def test_additional_tools_stay_for_later_turns_of_a_chain_and_of_a_conversation(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    """The item makes its tools available "at this item": from there on in the history, whether
    that history is a `previous_response_id` chain or a conversation."""
    additional = {"type": "additional_tools", "role": "developer", "tools": [NAMESPACE_TOOL]}
    first_input = [additional, {"type": "message", "role": "user", "content": "start"}]
    client = sdk(fake_server)
    upstream.enqueue(*[text_reply("ok") for _ in range(4)])
    first = strict_create(fake_server, model="fake/m", input=first_input)
    strict_create(fake_server, model="fake/m", input="again", previous_response_id=first.id)
    conversation = client.conversations.create()
    strict_create(fake_server, model="fake/m", input=first_input, conversation=conversation.id)
    strict_create(fake_server, model="fake/m", input="again", conversation=conversation.id)

    offered = [[t["function"]["name"] for t in request.get("tools") or []] for request in upstream.requests]
    assert offered == [["agents__spawn"]] * 4
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [item.type for item in items][:2] == ["additional_tools", "message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "function", "name": "agents__spawn"}, NAMESPACE_TOOL]}, "tools[1]"),
    ({"tools": [{"type": "custom", "name": "t", "format": {"type": "grammar", "syntax": "peg", "definition": "x"}}]},
     "tools[0].format.syntax"),
    ({"input": [{"type": "additional_tools", "role": "developer", "tools": [{"type": "file_search"}]}]},
     "input[0].tools[0].type"),
    ({"input": [{"type": "additional_tools", "role": "developer", "tools": [{"type": "function", "name": "a.b"}]}]},
     "input[0].tools[0].name"),
    ({"input": [{"type": "shell_call_output", "call_id": "nope", "output": []}]}, "input[0].call_id"),
    ({"input": [{"type": "apply_patch_call_output", "call_id": "c", "status": "maybe"}]}, "input[0].status"),
])
def test_bad_tool_shapes_are_400s_naming_the_parameter(
    fake_server: RunningServer, body: dict[str, Any], param: str
) -> None:
    reply = httpx.post(f"{fake_server.base_url}/responses", json={"model": "fake/m", "input": "hi", **body})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


def test_custom_tool_grammar_goes_upstream_natively_where_the_provider_constrains_decoding(
    make_server: ServerFactory, upstream: ScriptedUpstream
) -> None:
    server = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x",
                                                   constrained_custom_tools=True)])
    header = {"index": 0, "id": "call_n", "type": "custom", "custom": {"name": "apply_patch", "input": ""}}
    upstream.enqueue(Reply(deltas=(
        {"role": "assistant", "tool_calls": [header]},
        {"tool_calls": [{"index": 0, "custom": {"input": "*** Begin "}}]},
        {"tool_calls": [{"index": 0, "custom": {"input": "Patch\n"}}]},
    ), finish_reason="tool_calls"), text_reply("ok"))
    events = stream_events(server, model="fake/m", input="Patch it", tools=[CUSTOM_TOOL])

    assert_valid_stream(events)
    assert upstream.requests[0]["tools"] == [{"type": "custom", "custom": {
        "name": "apply_patch", "description": "Edit files.",
        "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": PATCH_GRAMMAR["definition"]}}}}]
    # The raw input streams as it comes.
    assert [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"] == ["*** Begin ", "Patch\n"]
    [call] = events[-1].response.output
    assert call.input == "*** Begin Patch\n"

    strict_create(server, model="fake/m", previous_response_id=events[-1].response.id, tools=[CUSTOM_TOOL],
                  input=[{"type": "custom_tool_call_output", "call_id": "call_n", "output": "applied"}])
    assert upstream.requests[1]["messages"][-2]["tool_calls"] == [
        {"id": "call_n", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch\n"}}]


def test_additional_tools_added_to_a_conversation_are_named_as_a_request_s_tools(fake_server: RunningServer) -> None:
    conversation = httpx.post(f"{fake_server.base_url}/conversations", json={}).json()
    item = {"type": "additional_tools", "role": "developer", "tools": [
        {"type": "function", "name": "ok"}, {"type": "function", "name": "search.web"}]}
    reply = httpx.post(f"{fake_server.base_url}/conversations/{conversation['id']}/items", json={"items": [item]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "items[0].tools[1].name"


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "custom", "name": 7}, "tools[0].name"),
    ({"type": "namespace", "name": "ns", "tools": []}, "tools[0].description"),
    ({"type": "namespace", "name": "ns", "description": "", "tools": [{"type": "shell"}]}, "tools[0].tools[0].type"),
    # Tool names as OpenAI takes them: letters, digits, '_' and '-', up to 128 (a namespace's, 64).
    ({"type": "function", "name": "get.weather"}, "tools[0].name"),
    ({"type": "function", "name": "get weather"}, "tools[0].name"),
    ({"type": "custom", "name": "p" * 129}, "tools[0].name"),
    ({"type": "namespace", "name": "n" * 65, "description": "", "tools": [{"type": "function", "name": "f"}]},
     "tools[0].name"),
    ({"type": "namespace", "name": "ns", "description": "", "tools": [{"type": "function", "name": "f"},
                                                                      {"type": "custom", "name": "ap/ply"}]},
     "tools[0].tools[1].name"),
])
def test_malformed_client_tool_definitions_are_400s_naming_the_field(
    fake_server: RunningServer, tool: dict[str, Any], param: str
) -> None:
    reply = httpx.post(f"{fake_server.base_url}/responses", json={"model": "fake/m", "input": "hi", "tools": [tool]})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param


@pytest.mark.parametrize(("tool_choice", "chosen"), [
    ({"type": "custom", "name": "apply_patch"}, "apply_patch"),
    ({"type": "shell"}, "shell"),
])
def test_tool_choice_names_client_tools_by_their_type(
    fake_server: RunningServer, upstream: ScriptedUpstream, tool_choice: dict[str, Any], chosen: str
) -> None:
    upstream.enqueue(text_reply("ok"))
    strict_create(fake_server, model="fake/m", input="go", tools=[CUSTOM_TOOL, {"type": "shell"}],
                  tool_choice=tool_choice)
    assert upstream.requests[0]["tool_choice"] == {"type": "function", "function": {"name": chosen}}
    reply = httpx.post(f"{fake_server.base_url}/responses", json={
        "model": "fake/m", "input": "go", "tools": [CUSTOM_TOOL], "tool_choice": {"type": "custom", "name": "nope"}})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "tool_choice.name"
