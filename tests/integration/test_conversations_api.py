"""The Conversations API over HTTP: every endpoint parses strictly as the SDK's types, items
paginate with a real has_more, and bad input gets a 4xx naming the param. Both backends."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItem,
    ConversationItemList,
)
from pydantic import TypeAdapter

from riposte.testing.server import RunningServer
from tests.integration.sdk import sdk

CONVERSATION_ITEM: TypeAdapter[ConversationItem] = TypeAdapter(ConversationItem)


class Http:
    """Raw calls whose bodies are validated with the SDK types (the SDK itself does not validate)."""

    def __init__(self, server: RunningServer) -> None:
        self.base = server.base_url

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        reply = httpx.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        assert reply.status_code == status, reply.text
        return reply.json()

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self.call(method, path, status, **kwargs)["error"]
        assert set(body) == {"message", "type", "param", "code"}
        return body


def messages(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "message", "role": "user", "content": text} for text in texts]


def texts_of(page: ConversationItemList) -> list[str]:
    return [item.content[0].text for item in page.data]  # type: ignore[union-attr]


def test_conversation_lifecycle_parses_as_sdk_types(fake_server: RunningServer) -> None:
    http = Http(fake_server)

    created = Conversation.model_validate(http.call("POST", "/conversations", json={
        "metadata": {"topic": "demo"}, "items": messages("hello")}))
    assert created.id.startswith("conv_") and len(created.id) == len("conv_") + 48
    assert created.metadata == {"topic": "demo"}

    fetched = Conversation.model_validate(http.call("GET", f"/conversations/{created.id}"))
    assert fetched == created
    updated = Conversation.model_validate(http.call("POST", f"/conversations/{created.id}",
                                                    json={"metadata": {"topic": "changed"}}))
    assert (updated.id, updated.metadata) == (created.id, {"topic": "changed"})

    deleted = ConversationDeletedResource.model_validate(http.call("DELETE", f"/conversations/{created.id}"))
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "conversation.deleted")
    assert http.error("GET", f"/conversations/{created.id}", 404)["param"] == "conversation_id"
    assert http.error("GET", f"/conversations/{created.id}/items", 404)["code"] == "not_found"


def test_items_are_added_retrieved_and_deleted_as_sdk_types(fake_server: RunningServer) -> None:
    http = Http(fake_server)
    conversation = http.call("POST", "/conversations", json={})["id"]

    added = ConversationItemList.model_validate(http.call("POST", f"/conversations/{conversation}/items", json={
        "items": [{"role": "user", "content": "no type"},
                  {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "call_1", "output": "42"}]}))
    assert [item.type for item in added.data] == ["message", "function_call", "function_call_output"]
    assert (added.first_id, added.last_id, added.has_more) == (added.data[0].id, added.data[2].id, False)

    call_id = added.data[1].id
    item = CONVERSATION_ITEM.validate_python(http.call("GET", f"/conversations/{conversation}/items/{call_id}"))
    assert item == added.data[1]

    after_delete = Conversation.model_validate(http.call("DELETE", f"/conversations/{conversation}/items/{call_id}"))
    assert after_delete.id == conversation
    assert http.error("GET", f"/conversations/{conversation}/items/{call_id}", 404)["param"] == "item_id"
    assert http.error("DELETE", f"/conversations/{conversation}/items/{call_id}", 404)["param"] == "item_id"
    remaining = ConversationItemList.model_validate(http.call("GET", f"/conversations/{conversation}/items",
                                                              params={"order": "asc"}))
    assert [i.type for i in remaining.data] == ["message", "function_call_output"]


def test_items_paginate_with_after_limit_order_and_a_real_has_more(fake_server: RunningServer) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=messages(*(f"m{n}" for n in range(20))))
    client.conversations.items.create(conversation.id, items=messages(*(f"m{n}" for n in range(20, 25))))

    first = client.conversations.items.list(conversation.id, order="asc", limit=10)
    assert texts_of(first) == [f"m{n}" for n in range(10)] and first.has_more is True
    last = client.conversations.items.list(conversation.id, order="asc", limit=15, after=first.last_id)
    assert texts_of(last) == [f"m{n}" for n in range(10, 25)] and last.has_more is False
    newest = client.conversations.items.list(conversation.id)
    assert texts_of(newest) == [f"m{n}" for n in range(24, 4, -1)] and newest.has_more is True
    every = [texts_of_item(item) for item in client.conversations.items.list(conversation.id, order="asc", limit=7)]
    assert every == [f"m{n}" for n in range(25)]


def texts_of_item(item: Any) -> str:
    text: str = item.content[0].text
    return text


def test_include_shapes_listed_items(fake_server: RunningServer) -> None:
    http = Http(fake_server)
    search = {"type": "file_search_call", "queries": ["q"], "status": "completed",
              "results": [{"file_id": "file-1", "filename": "a.txt", "score": 0.5, "text": "t"}]}
    conversation = http.call("POST", "/conversations", json={"items": [search]})["id"]

    plain = http.call("GET", f"/conversations/{conversation}/items")
    assert plain["data"][0]["results"] is None
    included = ConversationItemList.model_validate(http.call(
        "GET", f"/conversations/{conversation}/items", params={"include[]": "file_search_call.results"}))
    assert included.data[0].results[0].filename == "a.txt"  # type: ignore[union-attr]
    bad = http.error("GET", f"/conversations/{conversation}/items", 400, params={"include": "everything"})
    assert bad["param"] == "include[0]"


@pytest.mark.parametrize(
    ("path_suffix", "body", "param"),
    [
        ("", {"items": messages(*("x" for _ in range(21)))}, "items"),
        ("", {"items": [{"type": "message", "role": "robot", "content": "x"}]}, "items[0].role"),
        ("", {"metadata": {"k": "v" * 600}}, "metadata"),
        ("", {"bogus": True}, "bogus"),
        ("/items", {"items": messages(*("x" for _ in range(21)))}, "items"),
        ("/items", {"items": [{"type": "mcp_call", "name": "t", "server_label": "s"}]}, "items[0].arguments"),
        ("/items", {}, "items"),
        ("/items", {"items": [{"id": "msg_same", "role": "user", "content": "a"},
                              {"id": "msg_same", "role": "user", "content": "b"}]}, "items[1].id"),
    ],
)
def test_bad_conversation_requests_get_a_400_naming_the_param(
    fake_server: RunningServer, path_suffix: str, body: dict[str, Any], param: str
) -> None:
    http = Http(fake_server)
    path = "/conversations"
    if path_suffix:
        path = f"/conversations/{http.call('POST', '/conversations', json={})['id']}{path_suffix}"
    error = http.error("POST", path, 400, json=body)
    assert (error["param"], error["type"]) == (param, "invalid_request_error")


def test_adding_an_item_id_the_conversation_already_holds_is_a_400_and_adds_nothing(
    fake_server: RunningServer,
) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[{"id": "msg_taken", "role": "user", "content": "a"}])
    with pytest.raises(openai.BadRequestError) as raised:
        client.conversations.items.create(conversation.id, items=[
            {"role": "user", "content": "b"}, {"id": "msg_taken", "role": "user", "content": "c"}])
    assert raised.value.body["param"] == "items[1].id"  # type: ignore[index]
    assert len(client.conversations.items.list(conversation.id).data) == 1


def test_unknown_conversations_and_items_are_a_404_everywhere(fake_server: RunningServer) -> None:
    client = sdk(fake_server)
    missing = "conv_" + "0" * 48
    calls = [
        lambda: client.conversations.retrieve(missing),
        lambda: client.conversations.update(missing, metadata={"a": "b"}),
        lambda: client.conversations.delete(missing),
        lambda: client.conversations.items.create(missing, items=messages("x")),
        lambda: client.conversations.items.list(missing),
        lambda: client.conversations.items.retrieve("msg_x", conversation_id=missing),
        lambda: client.conversations.items.delete("msg_x", conversation_id=missing),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    existing = client.conversations.create()
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve("msg_x", conversation_id=existing.id)
    with pytest.raises(openai.BadRequestError):
        client.conversations.items.list(existing.id, after="msg_x")
