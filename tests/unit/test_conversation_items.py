"""Pure conversation logic: item validation and stored form, history replay, include views."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.conversations import ConversationItem
from pydantic import TypeAdapter

from riposte.engine.conversation import history_messages, new_conversation_items, requested_conversation_id
from riposte.engine.item_includes import item_view, parse_includes
from riposte.errors import InvalidRequestError
from riposte.sealing import Keyring, new_key

KEYS = Keyring([new_key()])
CONVERSATION_ITEM: TypeAdapter[ConversationItem] = TypeAdapter(ConversationItem)

EVERY_KIND: list[dict[str, Any]] = [
    {"role": "user", "content": "no type given"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]},
    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    {"type": "file_search_call", "queries": ["q"], "results": [{"file_id": "file-1", "text": "t"}]},
    {"type": "web_search_call", "action": {"type": "search", "query": "q"}},
    {"type": "mcp_list_tools", "server_label": "s", "tools": [{"name": "t", "input_schema": {}}]},
    {"type": "mcp_call", "name": "t", "arguments": "{}", "server_label": "s", "output": "done"},
    {"type": "mcp_approval_request", "name": "t", "arguments": "{}", "server_label": "s"},
    {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
    {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "think"}]},
]


def test_every_conversation_item_kind_is_stored_as_an_sdk_conversation_item() -> None:
    stored = new_conversation_items(EVERY_KIND)

    parsed = [CONVERSATION_ITEM.validate_python(item) for item in stored]
    assert [p.type for p in parsed] == [
        "message", "message", "function_call", "function_call_output", "file_search_call", "web_search_call",
        "mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response", "reasoning"]
    prefixes = [item["id"].split("_")[0] for item in stored]
    assert prefixes == ["msg", "msg", "fc", "fco", "fs", "ws", "mcpl", "mcp", "mcpr", "mcpa", "rs"]
    assert stored[0]["content"] == [{"type": "input_text", "text": "no type given"}]


def test_a_client_given_item_id_is_kept() -> None:
    [stored] = new_conversation_items([{"id": "msg_mine", "role": "user", "content": "x"}])
    assert stored["id"] == "msg_mine"


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"role": "user", "content": "x"}] * 21, "items"),
        (["not an object"], "items[0]"),
        ([{"role": "user", "content": "x"}, {"type": "message", "role": "robot", "content": "x"}], "items[1].role"),
        ([{"type": "computer_call", "id": "c"}], "items[0].type"),
        ([{"type": "mcp_call", "name": "t", "server_label": "s"}], "items[0].arguments"),
        ([{"type": "mcp_approval_response", "approval_request_id": "r", "approve": "yes"}], "items[0].approve"),
        ([{"type": "mcp_list_tools", "server_label": "s"}], "items[0].tools"),
        ([{"type": "file_search_call", "queries": "q"}], "items[0].queries"),
        ([{"type": "web_search_call"}], "items[0].action"),
    ],
)
def test_malformed_conversation_items_are_rejected_naming_the_param(items: list[Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        new_conversation_items(items)
    assert raised.value.param == param


def test_history_replays_messages_as_text_parts_and_tool_pairs_in_order() -> None:
    stored = new_conversation_items([
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "use the tool"}]},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
        {"type": "file_search_call", "queries": ["oslo"]},
        {"type": "message", "role": "assistant", "content": "It rains."},
    ])

    assert history_messages(stored, KEYS) == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {"role": "assistant", "reasoning_content": "use the tool", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "assistant", "content": [{"type": "text", "text": "It rains."}]},
    ]


def test_history_replays_an_mcp_call_as_a_call_and_its_result() -> None:
    [item] = new_conversation_items([
        {"type": "mcp_call", "id": "mcp_1", "name": "add", "arguments": '{"a":1}', "server_label": "s", "output": "2"}])

    assert history_messages([item], KEYS) == [
        {"role": "assistant", "tool_calls": [
            {"id": "mcp_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "mcp_1", "content": "2"},
    ]


def test_history_with_an_output_whose_call_was_deleted_is_a_400_on_the_conversation() -> None:
    stored = new_conversation_items([{"type": "function_call_output", "call_id": "call_gone", "output": "x"}])

    with pytest.raises(InvalidRequestError) as raised:
        history_messages(stored, KEYS)
    assert raised.value.param == "conversation"
    assert "call_gone" in raised.value.message


@pytest.mark.parametrize(("value", "expected"), [("conv_abc", "conv_abc"), ({"id": "conv_abc"}, "conv_abc")])
def test_conversation_param_accepts_an_id_or_an_object(value: Any, expected: str) -> None:
    assert requested_conversation_id(value) == expected


@pytest.mark.parametrize(("value", "param"), [("invalid_id", "conversation"), ({"id": 3}, "conversation.id"),
                                              ({}, "conversation.id")])
def test_a_malformed_conversation_param_is_a_400(value: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        requested_conversation_id(value)
    assert raised.value.param == param


def test_listed_items_hide_optional_fields_unless_included() -> None:
    search = {"id": "fs_1", "type": "file_search_call", "queries": ["q"], "status": "completed",
              "results": [{"file_id": "f", "text": "t"}]}
    web = {"id": "ws_1", "type": "web_search_call", "status": "completed",
           "action": {"type": "search", "query": "q", "sources": [{"type": "url", "url": "https://x"}]}}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "t", "annotations": [], "logprobs": []}]}

    assert item_view(search, frozenset())["results"] is None
    assert item_view(search, parse_includes(["file_search_call.results"]))["results"] == search["results"]
    assert "sources" not in item_view(web, frozenset())["action"]
    assert item_view(web, parse_includes(["web_search_call.action.sources"]))["action"] == web["action"]
    assert "logprobs" not in item_view(message, frozenset())["content"][0]
    assert item_view(message, parse_includes(["message.output_text.logprobs"])) == message


def test_an_unknown_include_value_is_a_400_naming_its_position() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_includes(["file_search_call.results", "everything"])
    assert raised.value.param == "include[1]"
