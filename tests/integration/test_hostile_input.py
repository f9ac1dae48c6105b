"""Hostile input gets a 400 naming the field, before any upstream call or write, and the same on
SQLite and PostgreSQL; input that is odd but valid (NUL bytes in text) is stored on both."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.module_servers import module_upstream, server, upstream

__all__ = ["module_upstream", "server", "upstream"]  # fixtures


def post(server: RunningServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=30)


def error_param(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return str(error["param"])


DEEP = "__deep__"


def post_deep(server: RunningServer, path: str, body: Any, depth: int) -> httpx.Response:
    """`body` with the string DEEP replaced by lists nested `depth` deep, written by hand: JSON
    encoders refuse such depths, which is why a client can send them but Riposte cannot store them."""
    text = json.dumps(body).replace(f'"{DEEP}"', "[" * depth + '"leaf"' + "]" * depth)
    return httpx.post(f"{server.base_url}{path}", content=text, headers={"content-type": "application/json"},
                      timeout=30)


@pytest.mark.parametrize("depth", [70, 300, 1000])
def test_json_nested_too_deep_is_a_400_naming_the_field(
    server: RunningServer, upstream: ScriptedUpstream, depth: int
) -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "default": DEEP}}
    response = post_deep(server, "/responses", {"model": "fake/m", "input": "hi", "tools": [tool]}, depth)
    assert error_param(response).startswith("tools[0].parameters.default[0][0]")
    assert response.json()["error"]["code"] == "nesting_too_deep"
    conversation = post_deep(server, "/conversations", {"metadata": {}, "items": [
        {"role": "user", "content": [{"type": "input_text", "text": "x", "extra": DEEP}]}]}, depth)
    assert error_param(conversation).startswith("items[0].content[0].extra[0]")
    assert upstream.requests == []
    upstream.enqueue(text_reply("still here"))
    assert post(server, "/responses", {"model": "fake/m", "input": "hi"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"role": {}, "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": {}}]}]}, "input[0].content[0].text"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": [7]}]}, "input[0].output[0].type"),
        ({"input": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": 1}]}]},
         "input[0].summary[0].text"),
        ({"input": "hi", "model": "fake/" + "m" * 400}, "model"),
        ({"input": "hi", "model": "fake/m\x00"}, "model"),
        ({"input": "hi", "stream": "yes"}, "stream"),
        ({"input": "hi", "tools": [{"type": "function", "name": ["f"]}]}, "tools[0].name"),
        ({"input": [{"role": "user", "content": "x", "id": 12}]}, "input[0].id"),
        ({"input": "hi", "reasoning": {"effort": "bogus"}}, "reasoning.effort"),
        ({"input": "hi", "tool_choice": "required"}, "tool_choice"),
        ({"input": [{"role": "user", "content": [5]}]}, "input[0].content[0].type"),
    ],
)
def test_malformed_fields_are_a_400_naming_the_json_path(
    server: RunningServer, upstream: ScriptedUpstream, body: dict[str, Any], param: str
) -> None:
    response = post(server, "/responses", {"model": "fake/m", **body})
    assert error_param(response) == param
    assert "discriminator" not in response.json()["error"]["message"]  # pydantic's wording, not the API's
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": 5}, "input", "expected one of a string or an array, but got an integer instead"),
        ({"input": {"role": "user"}}, "input", "expected one of a string or an array, but got an object instead"),
        ({"input": [5]}, "input[0]", "expected an object, but got an integer instead"),
        ({"input": "hi", "temperature": "hot"}, "temperature", "expected a number, but got a string instead"),
        ({"input": "hi", "metadata": ["x"]}, "metadata", "expected an object, but got an array instead"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": {}}]}]}, "input[0].content[0].text",
         "expected a string, but got an object instead"),
    ],
)
def test_a_value_of_the_wrong_json_type_names_the_types_expected_and_the_one_sent(
    server: RunningServer, upstream: ScriptedUpstream, body: dict[str, Any], param: str, message: str
) -> None:
    # Not pydantic's "Input should be a valid string" for `input: 5`, which may also be an array.
    response = post(server, "/responses", {"model": "fake/m", **body})
    assert error_param(response) == param
    error = response.json()["error"]
    assert error["code"] == "invalid_type"
    assert error["message"] == f"Invalid type for '{param}': {message}."
    assert upstream.requests == []


@pytest.mark.parametrize(("item_id", "param"), [(42, "items[0].id"), ("msg_" + "x" * 100, "items[0].id")])
def test_conversation_item_ids_are_checked_before_any_write(server: RunningServer, item_id: Any, param: str) -> None:
    created = post(server, "/conversations", {"items": [{"id": item_id, "role": "user", "content": "x"}]})
    assert error_param(created) == param
    conversation = post(server, "/conversations", {}).json()["id"]
    added = post(server, f"/conversations/{conversation}/items",
                 {"items": [{"id": item_id, "role": "user", "content": "x"}]})
    assert error_param(added) == param


def test_nul_bytes_in_text_are_stored_and_returned_on_both_backends(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("an answer with a \x00 NUL"))
    conversation = post(server, "/conversations", {"items": [{"role": "user", "content": "a \x00 b"}]}).json()["id"]
    response = post(server, "/responses", {"model": "fake/m", "input": "x\x00y", "instructions": "i\x00",
                                           "conversation": conversation, "metadata": {"k\x00": "v\x00"}})
    assert response.status_code == 200, response.text
    stored = httpx.get(f"{server.base_url}/responses/{response.json()['id']}", timeout=30).json()
    assert stored["output"][0]["content"][0]["text"] == "an answer with a \x00 NUL"
    items = httpx.get(f"{server.base_url}/conversations/{conversation}/items?order=asc", timeout=30).json()["data"]
    assert [item["content"][0]["text"] for item in items] == ["a \x00 b", "x\x00y", "an answer with a \x00 NUL"]


@pytest.mark.parametrize(
    ("method", "path", "param"),
    [
        ("GET", "/responses/resp_%00", "path"),
        ("DELETE", "/responses/resp_%00", "path"),
        ("GET", "/responses/resp_x/input_items?after=%00", "after"),
        ("GET", "/responses?model=m%00", "model"),
        ("GET", "/conversations/conv_%00/items", "path"),
        ("GET", "/files/file-%00", "path"),
        ("GET", "/vector_stores/vs_%00", "path"),
    ],
)
def test_control_characters_in_urls_are_a_400_on_both_backends(
    server: RunningServer, method: str, path: str, param: str
) -> None:
    response = httpx.request(method, f"{server.base_url}{path}", timeout=30)
    assert error_param(response) == param


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/responses", {"model": "fake/m", "input": "x", "previous_response_id": "resp_\x00"}, "previous_response_id"),
        ("/responses", {"model": "fake/m", "input": "x", "conversation": "conv_\x00"}, "conversation"),
        ("/responses", {"model": "fake/m", "input": "x", "conversation": {"id": "conv_\x00"}}, "conversation.id"),
        ("/vector_stores", {"name": "a\x00"}, "name"),
        ("/vector_stores", {"file_ids": ["file-\x00"]}, "file_ids[0]"),
    ],
)
def test_nul_in_ids_and_stored_names_is_a_400_on_both_backends(
    server: RunningServer, upstream: ScriptedUpstream, path: str, body: dict[str, Any], param: str
) -> None:
    assert error_param(post(server, path, body)) == param
    assert upstream.requests == []


def test_more_input_items_than_the_server_takes_is_a_400_before_any_work(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    response = post(server, "/responses", {"model": "fake/m", "input": [{"role": "user", "content": "x"}] * 10_001})
    assert error_param(response) == "input"
    assert response.json()["error"]["code"] == "array_above_max_length"
    assert upstream.requests == []


def test_a_large_body_is_read_off_the_event_loop_with_the_same_checks(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    padding = "lighthouse " * 40_000  # 440 KB, past api/body.py's OFF_LOOP_BYTES, about 40k tokens
    deep = post_deep(server, "/responses", {"model": "fake/m", "input": padding, "metadata": {"k": DEEP}}, 300)
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "nesting_too_deep"
    wrong = post(server, "/responses", {"model": "fake/m", "input": padding, "temperature": "hot"})
    assert error_param(wrong) == "temperature"
    upstream.enqueue(text_reply("Read it."))
    answered = post(server, "/responses", {"model": "fake/m", "input": padding})
    assert answered.status_code == 200 and answered.json()["output"][0]["content"][0]["text"] == "Read it."
