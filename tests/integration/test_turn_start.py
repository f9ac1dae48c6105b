"""How a stored turn starts: its row is committed (with the turns starting beside it, in one
transaction) before `response.created`, while its upstream request is already on its way; the
upstream's chunks never overtake `response.created`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
import pytest
from openai.types.responses import ResponseCreatedEvent, ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.api.sse import event_stream_response
from riposte.config import ProviderConfig, Settings
from riposte.engine.request import CreateResponseRequest
from riposte.engine.turn import prepare_turn
from riposte.inference.chat_stream import ChatStreamClient
from riposte.inference.router import ModelRouter
from riposte.store.database import create_engine, migrate
from riposte.store.responses import NewResponse, OpenResponse, ResponseStore
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply

WAIT_S = 10.0


class _StoreWaitingForTheUpstream(ResponseStore):
    """Writes a turn's row only once the upstream has its request: a turn that sent the request
    only after the commit would wait here for ever (the test's timeout)."""

    def __init__(self, *args: Any, upstream: ScriptedUpstream, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.upstream = upstream
        self.requests_before_commit: list[int] = []
        self.client_waits: list[bool] = []

    async def create(self, new: NewResponse, also: Any = None, *, client_waits: bool = False) -> OpenResponse:
        async with asyncio.timeout(WAIT_S):
            while len(self.upstream.requests) < len(self.requests_before_commit) + 1:
                await asyncio.sleep(0.005)
        self.requests_before_commit.append(len(self.upstream.requests))
        self.client_waits.append(client_waits)
        return await super().create(new, also, client_waits=client_waits)


@pytest.fixture
async def store(database_url: str, upstream: ScriptedUpstream) -> AsyncIterator[_StoreWaitingForTheUpstream]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield _StoreWaitingForTheUpstream(engine, upstream=upstream)
    await engine.dispose()


def _router(upstream: ScriptedUpstream) -> ModelRouter:
    return ModelRouter(Settings(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")]))


async def test_the_upstream_request_goes_out_while_the_row_is_stored_and_created_still_comes_first(
    store: _StoreWaitingForTheUpstream, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("hello there", pieces=3))
    router = _router(upstream)
    turn = await prepare_turn(CreateResponseRequest(model="fake/m", input="hi", stream=True), router, store)
    types: list[str] = []
    async with asyncio.timeout(WAIT_S):
        async for batch in turn.event_batches():
            for event in batch:
                if not types:
                    ResponseCreatedEvent.model_validate(event)
                    # The id is revealed only once its row is committed.
                    assert await store.get_response(event["response"]["id"]) is not None
                types.append(event["type"])
    await router.aclose()
    assert store.requests_before_commit == [1]
    assert store.client_waits == [True]  # a stream's client waits for this row: written at once when it can be
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types.index("response.output_text.delta") > 1
    assert types[-1] == "response.completed"
    stored = await store.get_response(turn.response["id"])
    assert stored is not None and stored["status"] == "completed"
    assert stored["output"][0]["content"][0]["text"] == "hello there"


async def test_turns_starting_together_are_all_stored_and_answered(database_url: str, upstream: ScriptedUpstream,
                                                                   tmp_path: Any) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    store = ResponseStore(engine)
    router = _router(upstream)
    for number in range(12):
        upstream.enqueue(text_reply(f"answer {number}"))

    async def one(number: int) -> dict[str, Any]:
        turn = await prepare_turn(CreateResponseRequest(model="fake/m", input=f"q{number}"), router, store)
        async for _ in turn.event_batches():
            pass
        return turn.response

    async with asyncio.timeout(WAIT_S * 3):
        responses = await asyncio.gather(*(one(n) for n in range(12)))
    await router.aclose()
    for response in responses:
        stored = await store.get(response["id"])
        assert stored is not None and stored.response["status"] == "completed"
        assert stored.input_items[0]["content"][0]["text"] in {f"q{n}" for n in range(12)}
    await engine.dispose()


async def test_only_a_streams_first_row_is_one_its_client_waits_for(
    store: _StoreWaitingForTheUpstream, upstream: ScriptedUpstream
) -> None:
    """A non-streaming turn's row goes with the others starting beside it: its client waits for the
    whole answer anyway."""
    router = _router(upstream)
    for stream in (False, True):
        upstream.enqueue(text_reply("hello"))
        turn = await prepare_turn(CreateResponseRequest(model="fake/m", input="hi", stream=stream), router, store)
        async with asyncio.timeout(WAIT_S):
            async for _ in turn.event_batches():
                pass
    await router.aclose()
    assert store.client_waits == [False, True]


async def test_once_the_turn_takes_the_early_stream_over_it_reads_the_stream_itself(
    store: _StoreWaitingForTheUpstream, upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing relays the upstream's batches between the turn and the stream after the takeover:
    each later read is the turn's own step (one generator less per paced read)."""
    resumed_by: list[str] = []
    read = ChatStreamClient.stream

    async def observed(self: ChatStreamClient, body: dict[str, Any]) -> AsyncGenerator[list[dict[str, Any]]]:
        async for batch in read(self, body):
            yield batch
            resumed_by.append(sys._getframe(1).f_code.co_name)  # whose step asked for the next batch

    monkeypatch.setattr(ChatStreamClient, "stream", observed)
    upstream.enqueue(slow_reply("one two three four five six", delay_s=0.05, pieces=6))
    router = _router(upstream)
    turn = await prepare_turn(CreateResponseRequest(model="fake/m", input="hi", stream=True), router, store)
    texts: list[str] = []
    async with asyncio.timeout(WAIT_S):
        async for batch in turn.event_batches():
            texts += [event["delta"] for event in batch if event["type"] == "response.output_text.delta"]
    await router.aclose()
    assert "".join(texts) == "one two three four five six"
    # The early reader may read some (it stops after the read it is in when the turn takes over);
    # every read after that is the turn's.
    assert "_call_upstream" in resumed_by
    assert set(resumed_by) <= {"_read_until_taken_over", "_call_upstream"}, resumed_by


async def test_a_streamed_response_reads_the_upstream_stream_in_its_writer(
    store: _StoreWaitingForTheUpstream, upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed response takes the turn's upstream reads as a `Relay` (riposte/relay.py): after
    the takeover each read is the writer's own step, not one passed up and down the turn's three
    generators; the events, their order and the stored answer stay as they were."""
    resumed_by: list[str] = []
    read = ChatStreamClient.stream

    async def observed(self: ChatStreamClient, body: dict[str, Any]) -> AsyncGenerator[list[dict[str, Any]]]:
        async for batch in read(self, body):
            yield batch
            resumed_by.append(sys._getframe(1).f_code.co_name)

    monkeypatch.setattr(ChatStreamClient, "stream", observed)
    upstream.enqueue(slow_reply("one two three four five six", delay_s=0.05, pieces=6))
    router = _router(upstream)
    turn = await prepare_turn(CreateResponseRequest(model="fake/m", input="hi", stream=True), router, store)
    bodies: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async with asyncio.timeout(WAIT_S):
        await event_stream_response(turn.relayed_event_batches())({"type": "http"}, receive, send)
    await router.aclose()
    events = [orjson.loads(line[len(b"data: "):]) for line in b"".join(bodies).split(b"\n")
              if line.startswith(b"data: {")]
    for event in events:  # a malformed event fails the SDK's own type
        TypeAdapter(ResponseStreamEvent).validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == \
        "one two three four five six"
    assert events[-1]["type"] == "response.completed"
    assert "_write_all" in resumed_by
    assert set(resumed_by) <= {"_read_until_taken_over", "_write_all"}, resumed_by
    stored = await store.get_response(turn.response["id"])
    assert stored is not None and stored["status"] == "completed"
    assert stored["output"][0]["content"][0]["text"] == "one two three four five six"
