"""WebSocket mode on `/v1/responses`, driven by openai-python's `client.responses.connect()`.

Every server event is validated with the SDK's `ResponsesServerEvent` type (not its lenient
construct), and each response's events pass the stream grammar checker, like SSE streams do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.resources.responses.responses import ResponsesConnection
from openai.types.responses.responses_server_event import ResponsesServerEvent
from pydantic import TypeAdapter

from riposte.testing.grammar import TERMINAL_EVENT_TYPES, assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, error_reply, make_usage, slow_reply, text_reply
from tests.integration.module_servers import module_upstream, server, upstream
from tests.integration.sdk import raw_stream

__all__ = ["module_upstream", "server", "upstream"]

SERVER_EVENT: TypeAdapter[ResponsesServerEvent] = TypeAdapter(ResponsesServerEvent)
MODEL = "fake/m"


@contextmanager
def connected(server: RunningServer, api_key: str = "x") -> Iterator[ResponsesConnection]:
    client = openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)
    with client.responses.connect() as connection:
        yield connection


def receive(connection: ResponsesConnection) -> dict[str, Any]:
    """The next server event as sent, after it validated as an SDK server event."""
    event: dict[str, Any] = orjson.loads(connection.recv_bytes())
    SERVER_EVENT.validate_python(event)
    return event


def until_done(connection: ResponsesConnection) -> list[dict[str, Any]]:
    """Events up to and including a terminal event or an error event."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in TERMINAL_EVENT_TYPES | {"error"}:
        events.append(receive(connection))
    return events


def run(connection: ResponsesConnection, **params: Any) -> list[dict[str, Any]]:
    connection.response.create(model=MODEL, **params)
    events = until_done(connection)
    if events[-1]["type"] != "error":
        assert_valid_stream(events)
    return events


def the_error(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert [event["type"] for event in events] == ["error"], events
    return events[0]


def test_three_sequential_responses_chained_through_an_unstored_first(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    """Acceptance: three responses on one connection, the second continuing a `store: false`
    first that only this connection remembers, the third continuing the second."""
    upstream.enqueue(text_reply("Saturn has rings.", usage=make_usage(8, 4)), text_reply("SATURN HAS RINGS."),
                     text_reply("Ice and rock."))
    with connected(server) as connection:
        first = run(connection, input="Name a planet with rings.", store=False)
        first_id = first[0]["response"]["id"]
        second = run(connection, input="Repeat that in capitals.", previous_response_id=first_id)
        second_id = second[0]["response"]["id"]
        third = run(connection, input="What are they made of?", previous_response_id=second_id)

    assert [events[-1]["type"] for events in (first, second, third)] == ["response.completed"] * 3
    assert third[-1]["response"]["output"][0]["content"][0]["text"] == "Ice and rock."
    assert second[-1]["response"]["previous_response_id"] == first_id
    sent = [request["messages"] for request in upstream.requests]
    assert sent[1] == [{"role": "user", "content": "Name a planet with rings."},
                       {"role": "assistant", "content": "Saturn has rings."},
                       {"role": "user", "content": "Repeat that in capitals."}]
    assert sent[2] == [*sent[1], {"role": "assistant", "content": "SATURN HAS RINGS."},
                       {"role": "user", "content": "What are they made of?"}]
    http = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        http.responses.retrieve(first_id)  # store: false stays unstored
    stored_inputs = [item.content[0].text for item in http.responses.input_items.list(second_id, order="asc").data
                     if item.type == "message"]
    assert stored_inputs == ["Name a planet with rings.", "Saturn has rings.", "Repeat that in capitals."]
    assert http.responses.retrieve(third[0]["response"]["id"]).output_text == "Ice and rock."


def test_events_are_the_sse_events(server: RunningServer, upstream: ScriptedUpstream) -> None:
    """The same reply over SSE and over a WebSocket: the same events, field for field, apart
    from the ids and times each response mints."""
    upstream.enqueue(text_reply("Hello there, friend.", usage=make_usage(5, 4)),
                     text_reply("Hello there, friend.", usage=make_usage(5, 4)))
    over_sse = raw_stream(server, {"model": MODEL, "input": "hi", "stream": True})
    with connected(server) as connection:
        over_socket = run(connection, input="hi")
    assert [_shape(event) for event in over_socket] == [_shape(event) for event in over_sse]


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "<minted>" if key in ("id", "item_id", "created_at", "completed_at") else _shape(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


def test_a_warm_up_prepares_a_turn_that_the_next_one_continues(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    """`generate: false` stores the turn's input without calling the model; its id is then a
    `previous_response_id` like any other (here unstored, so only this connection has it)."""
    upstream.enqueue(text_reply("Blue."))
    with connected(server) as connection:
        warm = run(connection, input="The sky is blue.", instructions="Answer in one word.", store=False,
                   generate=False)
        answered = run(connection, input="What colour is the sky?", instructions="Answer in one word.",
                       previous_response_id=warm[0]["response"]["id"])
    assert [event["type"] for event in warm] == ["response.created", "response.in_progress", "response.completed"]
    assert warm[-1]["response"]["output"] == []
    assert answered[-1]["response"]["output"][0]["content"][0]["text"] == "Blue."
    [request] = upstream.requests
    assert request["messages"] == [{"role": "system", "content": "Answer in one word."},
                                   {"role": "user", "content": "The sky is blue."},
                                   {"role": "user", "content": "What colour is the sky?"}]


def test_a_failing_turn_ends_with_the_websocket_error_shape(server: RunningServer, upstream: ScriptedUpstream) -> None:
    """The turn's own `error` event (before `response.failed`) reads as the SDK's ResponseWsError:
    the error in an `error` object, with the stream's sequence number; the connection goes on."""
    upstream.enqueue(error_reply(500, "the backend fell over"), text_reply("recovered"))
    with connected(server) as connection:
        failed = run(connection, input="fail please")
        while failed[-1]["type"] != "response.failed":
            failed.append(receive(connection))
        assert run(connection, input="again")[-1]["type"] == "response.completed"
    assert_valid_stream(failed)
    error = failed[-2]
    assert error["type"] == "error" and error["sequence_number"] == failed[-3]["sequence_number"] + 1
    assert error["error"]["type"] == "server_error" and "the backend fell over" in error["error"]["message"]
    assert failed[-1]["response"]["status"] == "failed"


def test_refused_requests_get_error_events_and_the_connection_goes_on(
    server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("kept"), text_reply("finally"))
    with connected(server) as connection:
        kept = run(connection, input="remember me", store=False)[0]["response"]["id"]
        connection.send_raw(b"{not json")
        error = the_error(until_done(connection))
        assert (error["status"], error["error"]["code"], error["error"]["param"]) == (400, "invalid_json", "event")

        connection.send({"type": "response.cancel"})  # type: ignore[typeddict-item]
        assert the_error(until_done(connection))["error"]["code"] == "unknown_event_type"

        error = the_error(run(connection, input="x", temperature=5))
        assert (error["status"], error["error"]["type"], error["error"]["param"]) == (
            400, "invalid_request_error", "temperature")

        error = the_error(run(connection, input="x", background=True))
        assert (error["status"], error["error"]["param"]) == (400, "background")

        error = the_error(run(connection, input="x", stream=False))
        assert error["error"]["param"] == "stream"

        error = the_error(run(connection, input="x", previous_response_id="resp_unknown"))
        assert (error["error"]["code"], error["error"]["param"]) == ("previous_response_not_found",
                                                                      "previous_response_id")

        # A failed request forgets the unstored response it continued (as OpenAI's WebSocket
        # mode does): the client starts that chain again with the full input.
        error = the_error(run(connection, input="x", previous_response_id=kept, top_p=7))
        assert error["error"]["param"] == "top_p"
        error = the_error(run(connection, input="x", previous_response_id=kept))
        assert error["error"]["code"] == "previous_response_not_found"
        assert "store=false" in error["error"]["message"]

        assert run(connection, input="still there?")[-1]["type"] == "response.completed"
    assert len(upstream.requests) == 2  # nothing refused reached the model
    metrics = httpx.get(server.base_url.removesuffix("/v1") + "/metrics").text
    assert 'riposte_http_requests_total{method="WS",route="/v1/responses",status="400"}' in metrics


def test_a_lane_runs_its_responses_in_order(server: RunningServer, upstream: ScriptedUpstream) -> None:
    """Without `stream_id` every request is on one lane: a second `response.create` sent while the
    first runs waits for it, and its events follow the first's terminal event."""
    upstream.enqueue(slow_reply("one two three four", delay_s=0.05, pieces=4), text_reply("second"))
    with connected(server) as connection:
        connection.response.create(model=MODEL, input="first")
        connection.response.create(model=MODEL, input="second")
        first = until_done(connection)
        second = until_done(connection)
    assert first[-1]["response"]["output"][0]["content"][0]["text"] == "one two three four"
    assert second[-1]["response"]["output"][0]["content"][0]["text"] == "second"
    assert_valid_stream(first)
    assert_valid_stream(second)
    assert all("stream_id" not in event for event in first + second)


def test_lanes_run_side_by_side(server: RunningServer, upstream: ScriptedUpstream) -> None:
    """A `stream_id` names a lane; lanes do not wait for each other, and every event says its lane."""
    upstream.enqueue(slow_reply("a " * 40, delay_s=0.05, pieces=40), text_reply("quick"))
    with connected(server) as connection:
        connection.response.create(model=MODEL, input="slow", stream_id="slow-lane")
        _wait_for_requests(upstream, 1)
        connection.response.create(model=MODEL, input="fast", stream_id="fast-lane")
        events: dict[str, list[dict[str, Any]]] = {"slow-lane": [], "fast-lane": []}
        finished: list[str] = []
        while len(finished) < 2:
            event = receive(connection)
            events[event["stream_id"]].append(event)
            if event["type"] in TERMINAL_EVENT_TYPES:
                finished.append(event["stream_id"])
    assert finished == ["fast-lane", "slow-lane"]
    for lane_events in events.values():
        assert_valid_stream(lane_events)
    assert events["fast-lane"][-1]["response"]["output"][0]["content"][0]["text"] == "quick"


def _wait_for_requests(upstream: ScriptedUpstream, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(upstream.requests) < count:
        assert time.monotonic() < deadline, "the upstream never got the request"
        time.sleep(0.01)
