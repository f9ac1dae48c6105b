"""Translation is checked byte for byte against what the recording system sent upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from riposte.engine.items import input_as_items
from riposte.engine.request import CreateResponseRequest
from riposte.engine.translate import chat_request_body, items_to_messages
from riposte.errors import InvalidRequestError
from riposte.inference.recording import match_key
from tests.conftest import REFERENCE_RECORDINGS, SEED_RECORDINGS

QUESTION = "Which planet has rings around it with a name starting with letter S?"


def recorded_body(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text())["request"]["body"]
    return body


def seed(name: str) -> Path:
    return next(SEED_RECORDINGS.glob(f"{name}_*.json"))


def body_for(**params: Any) -> dict[str, Any]:
    request = CreateResponseRequest(model="openai/gpt-4o", **params)
    assert request.input is not None
    return chat_request_body(request, "gpt-4o", items_to_messages(input_as_items(request.input), []))


def test_string_input_builds_seed_001_exactly() -> None:
    assert body_for(input=QUESTION) == recorded_body(seed("001"))


def test_text_format_builds_seed_002_plus_include_usage() -> None:
    expected = {**recorded_body(seed("002")), "stream_options": {"include_usage": True}}
    assert body_for(input=QUESTION, text={"format": {"type": "text"}}) == expected


def test_inline_history_builds_seed_000_messages_exactly() -> None:
    messages = recorded_body(seed("000"))["messages"]
    built = body_for(input=[{"role": m["role"], "content": m["content"]} for m in messages])
    assert built["messages"] == messages


def test_client_function_calls_match_the_ordering_recording() -> None:
    ordering = "0c5c1f77be37a3ec1a04e740650be3ef901e37bf8659081a5bcd24ff715570a3.json"
    recorded = recorded_body(REFERENCE_RECORDINGS / ordering)
    items: list[dict[str, Any]] = [{"role": "user", "content": recorded["messages"][0]["content"]}]
    for message in recorded["messages"][1:]:
        if message["role"] == "assistant":
            call = message["tool_calls"][0]
            items.append({"type": "function_call", "call_id": call["id"], "name": call["function"]["name"],
                          "arguments": call["function"]["arguments"]})
        else:
            items.append({"type": "function_call_output", "call_id": message["tool_call_id"],
                          "output": message["content"]})
    tool = recorded["tools"][0]["function"]
    body = body_for(input=items, tools=[{"type": "function", "name": tool["name"], "description": tool["description"],
                                         "parameters": tool["parameters"]}])
    body.pop("stream_options")
    # Riposte sends the standard tool definition; matching ignores the recorder's extra keys.
    assert match_key("/v1/chat/completions", body) == match_key("/v1/chat/completions", recorded)


def test_image_input_matches_the_image_recording() -> None:
    path = next(p for p in REFERENCE_RECORDINGS.glob("*.json")
                if "image_url" in p.read_text() and len(recorded_body(p)["messages"]) == 2)
    recorded = recorded_body(path)
    image = recorded["messages"][1]["content"][0]["image_url"]["url"]
    body = body_for(input=[
        {"role": "user", "content": [{"type": "input_text", "text": "what teams are playing in this image?"}]},
        {"role": "user", "content": [{"type": "input_image", "image_url": image}]},
    ])
    assert body["messages"] == recorded["messages"]


def test_function_call_output_follows_its_call_even_when_sent_later() -> None:
    items = input_as_items([
        {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "b", "output": "B"},
        {"type": "function_call_output", "call_id": "a", "output": "A"},
    ])
    messages = items_to_messages(items, [])
    assert [(m["role"], m.get("tool_call_id")) for m in messages] == [
        ("assistant", None), ("tool", "a"), ("assistant", None), ("tool", "b")]


def test_output_for_a_call_in_history_stays_in_place() -> None:
    history = [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "h1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]
    messages = items_to_messages(input_as_items([{"type": "function_call_output", "call_id": "h1", "output": "x"}]),
                                 history)
    assert messages == [{"role": "tool", "tool_call_id": "h1", "content": "x"}]


def test_output_without_any_call_is_rejected_naming_its_param() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        items_to_messages(input_as_items([{"type": "function_call_output", "call_id": "zz", "output": "x"}]), [])
    assert caught.value.param == "input[0].call_id"


def test_input_file_becomes_a_chat_file_part() -> None:
    items = input_as_items([{"role": "user", "content": [
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}]}])
    assert items_to_messages(items, []) == [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}]}]


def test_max_output_tokens_uses_the_providers_parameter_name() -> None:
    request = CreateResponseRequest(model="m", input="x", max_output_tokens=20)
    assert chat_request_body(request, "m", [], max_tokens_param="max_tokens")["max_tokens"] == 20
