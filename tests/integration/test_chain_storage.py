"""`previous_response_id` chains store each turn's new items once, replay the same history
upstream as before, and survive the deletion of any response in them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from riposte.store.database import create_engine, migrate
from riposte.store.responses import NewResponse, OpenResponse, ResponseStore
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply
from tests.integration.sdk import sdk
from tests.integration.stored_rows import response_row, sql

TURNS = 6


def _chain(server: RunningServer, upstream: ScriptedUpstream, turns: int = TURNS) -> list[str]:
    client = sdk(server)
    ids: list[str] = []
    for turn in range(turns):
        upstream.enqueue(text_reply(f"answer {turn} " + "x" * 500))
        response = client.responses.create(model="fake/m", input=f"question {turn} " + "q" * 500,
                                           previous_response_id=ids[-1] if ids else None, instructions="Be brief.")
        ids.append(response.id)
    return ids


def _expected_messages(turns: int) -> list[dict[str, Any]]:
    """What the n-th request must send: the whole conversation so far, as the chain replays it."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"question {turn} " + "q" * 500})
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": f"answer {turn} " + "x" * 500})
    return messages


def test_each_turn_stores_only_its_own_items_and_replays_the_whole_history(
    fake_server: RunningServer, upstream: ScriptedUpstream, database_url: str
) -> None:
    ids = _chain(fake_server, upstream)

    assert [request["messages"] for request in upstream.requests] == [
        _expected_messages(n) for n in range(1, TURNS + 1)]
    for index, response_id in enumerate(ids):
        row = response_row(database_url, response_id)
        assert row.history_base == (ids[index - 1] if index else None)
        assert len(orjson.loads(row.input_items)) == 1  # only this turn's question
        assert len(orjson.loads(row.messages)) == 2  # its question and its answer
    sizes = [len(response_row(database_url, i).input_items) + len(response_row(database_url, i).messages)
             for i in ids]
    assert max(sizes[1:]) - min(sizes[1:]) < 50, "a later turn must not store more than an earlier one"


def test_input_items_of_a_chained_response_list_the_whole_chain(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    ids = _chain(fake_server, upstream, turns=3)
    items = sdk(fake_server).responses.input_items.list(ids[-1], order="asc").data
    kinds = [(item.type, item.role) for item in items]  # type: ignore[union-attr]
    assert kinds == [("message", "user"), ("message", "assistant")] * 2 + [("message", "user")]
    assert items[1].id == sdk(fake_server).responses.retrieve(ids[0]).output[0].id


def test_deleting_a_response_inside_a_chain_keeps_the_chain_continuable(
    fake_server: RunningServer, upstream: ScriptedUpstream, database_url: str
) -> None:
    ids = _chain(fake_server, upstream, turns=4)
    client = sdk(fake_server)
    before = [item.id for item in client.responses.input_items.list(ids[-1], limit=100).data]

    client.responses.delete(ids[1])
    client.responses.delete(ids[0])

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(ids[1])
    assert ids[1] not in [r["id"] for r in fake_server_list(fake_server)]
    assert [item.id for item in client.responses.input_items.list(ids[-1], limit=100).data] == before
    upstream.enqueue(text_reply("still here"))
    client.responses.create(model="fake/m", input="question 4 " + "q" * 500, previous_response_id=ids[-1],
                            instructions="Be brief.")
    last_answer = {"role": "assistant", "content": "answer 3 " + "x" * 500}
    assert upstream.requests[-1]["messages"][:-1] == [*_expected_messages(4), last_answer]
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="fake/m", input="x", previous_response_id=ids[1])
    assert raised.value.code == "previous_response_not_found"


def test_deleting_every_response_of_a_chain_removes_every_row(
    fake_server: RunningServer, upstream: ScriptedUpstream, database_url: str
) -> None:
    ids = _chain(fake_server, upstream, turns=4)
    client = sdk(fake_server)
    for response_id in (ids[1], ids[0], ids[3], ids[2]):  # tombstones first, then the ends
        client.responses.delete(response_id)
        with pytest.raises(openai.NotFoundError):
            client.responses.delete(response_id)
    placeholders = ", ".join(f"'{i}'" for i in ids)
    assert sql(database_url, f"SELECT id FROM responses WHERE id IN ({placeholders})") == []


def test_a_response_that_is_streaming_is_stored_in_progress_and_cannot_be_continued_yet(
    fake_server: RunningServer, upstream: ScriptedUpstream, database_url: str
) -> None:
    upstream.enqueue(slow_reply("one two three four", delay_s=0.3, pieces=4))
    client = sdk(fake_server)
    with client.responses.create(model="fake/m", input="hi", stream=True) as stream:
        created = next(iter(stream))
        assert created.type == "response.created"
        response_id = created.response.id
        assert client.responses.retrieve(response_id).status == "in_progress"
        assert response_row(database_url, response_id).owner is not None
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="fake/m", input="more", previous_response_id=response_id)
        assert refused.value.body["param"] == "previous_response_id"  # type: ignore[index]
        for _ in stream:
            pass
    assert client.responses.retrieve(response_id).status == "completed"
    assert response_row(database_url, response_id).owner is None


def fake_server_list(server: RunningServer) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = httpx.get(f"{server.base_url}/responses", params={"limit": 100}).json()["data"]
    return listed


def test_a_continuation_racing_the_delete_of_its_previous_response_never_loses_its_history(
    database_url: str,
) -> None:
    """Deleting a response while a turn continuing it is being stored: whichever wins, the new
    response keeps its full history (linked to a kept tombstone, or stored whole)."""

    async def race() -> None:
        engine = create_engine(database_url)
        await migrate(engine)
        store = ResponseStore(engine, owner="inst_race")
        try:
            for attempt in range(15):
                parent = _response(f"resp_race_parent_{attempt}_{time.time_ns()}", None)
                await store.create(NewResponse(parent, [_item("a")], None, 0, 0))
                await store.finish(OpenResponse(parent["id"], None, 0), {**parent, "status": "completed",
                                   "output": [_item("b")]}, [{"role": "user", "content": "a"}])
                child = _response(f"resp_race_child_{attempt}_{time.time_ns()}", parent["id"])
                full_items = [_item("a"), _item("b"), _item("c")]
                deleted, opened = await asyncio.gather(
                    store.delete(parent["id"]),
                    store.create(NewResponse(child, full_items, parent["id"], 2, 1)))
                assert deleted
                await store.finish(opened, {**child, "status": "completed", "output": []},
                                   [{"role": "user", "content": "a"}, {"role": "user", "content": "c"}])
                rebuilt = await store.get(child["id"])
                assert rebuilt is not None
                assert [item["id"] for item in rebuilt.input_items] == ["a", "b", "c"]
                assert rebuilt.messages == [{"role": "user", "content": "a"}, {"role": "user", "content": "c"}]
                assert await store.get(parent["id"]) is None
        finally:
            await engine.dispose()

    asyncio.run(race())


def _response(response_id: str, previous: str | None) -> dict[str, Any]:
    return {"id": response_id, "created_at": 1, "model": "m", "status": "in_progress", "output": [],
            "previous_response_id": previous}


def _item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "user", "content": [{"type": "input_text", "text": item_id}]}
