"""SIGTERM with WebSocket connections open, on a real `riposte serve` process: the response running
on a connection finishes within the grace period, a new `response.create` (or one queued behind the
running one) is refused with an error event, and every connection then closes cleanly with 1001
(going away). A response cut when the grace period runs out is logged 503, on a socket or an HTTP
stream."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.resources.responses.responses import ResponsesConnection
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from riposte.errors import SERVER_SHUT_DOWN
from riposte.testing.grammar import assert_valid_stream
from tests.fakes.scripted_upstream import ScriptedUpstream, hanging_reply, slow_reply
from tests.integration.server_process import ServerProcess
from tests.integration.stored_rows import response_row, sql
from tests.integration.test_websocket_mode import SERVER_EVENT

ANSWER = "Saturn's rings are mostly water ice, with some rock and dust."


def events_until_closed(connection: ResponsesConnection) -> tuple[list[dict[str, Any]], ConnectionClosedOK]:
    """Every server event (each validated as an SDK server event) until the server closes the
    connection cleanly; a close that is not clean fails the test with its own exception."""
    events: list[dict[str, Any]] = []
    while True:
        try:
            event: dict[str, Any] = orjson.loads(connection.recv_bytes())
        except ConnectionClosedOK as closed:
            return events, closed
        SERVER_EVENT.validate_python(event)
        events.append(event)


@pytest.mark.timeout(180)
def test_sigterm_lets_a_running_websocket_response_finish_then_closes_going_away(tmp_path: Path) -> None:
    with ScriptedUpstream() as upstream:
        upstream.enqueue(slow_reply(ANSWER, delay_s=0.3, pieces=8))
        config = tmp_path / "riposte.yaml"
        config.write_text(f"providers:\n  - name: fake\n    base_url: {upstream.base_url}\n    api_key: k\n"
                          "shutdown_grace_seconds: 60\n")
        with ServerProcess("--config", str(config), "--log-format", "json", data_dir=tmp_path / "data") as server:
            idle = connect(f"ws://127.0.0.1:{server.port}/v1/responses")
            client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
            with client.responses.connect() as connection:
                connection.response.create(model="fake/m", input="What are Saturn's rings made of?")
                connection.response.create(model="fake/m", input="Queued behind the first one.")
                started: list[dict[str, Any]] = []
                while not started or started[-1]["type"] != "response.output_text.delta":
                    started.append(orjson.loads(connection.recv_bytes()))

                server.send_sigterm()
                server.wait_for_log(lambda line: line.get("message") == "Shutting down")
                connection.response.create(model="fake/m", input="And one more question?")
                rest, closed = events_until_closed(connection)

            assert (closed.rcvd is not None and closed.rcvd.code, closed.rcvd and closed.rcvd.reason) == (
                1001, "server shutting down")
            refused = [event for event in rest if event["type"] == "error"]
            assert [(e["status"], e["error"]["code"], e["error"]["type"]) for e in refused] == [
                (503, "server_shutting_down", "server_error")] * 2
            response_events = started + [event for event in rest if event["type"] != "error"]
            assert_valid_stream(response_events)
            completed = response_events[-1]
            assert completed["type"] == "response.completed"
            assert completed["response"]["output"][0]["content"][0]["text"] == ANSWER

            with pytest.raises(ConnectionClosedOK) as idle_closed:
                idle.recv(timeout=30)
            assert idle_closed.value.rcvd is not None and idle_closed.value.rcvd.code == 1001

            # uvicorn ends a graceful shutdown by re-raising the signal it caught.
            assert server.wait() in (0, -15)
            log = "\n".join(server.lines())
            assert "timeout graceful shutdown exceeded" not in log and "Exception in ASGI application" not in log
            assert len(upstream.requests) == 1, "the refused requests never reached the model"

    database_url = f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'riposte.db').resolve()}"
    assert response_row(database_url, completed["response"]["id"]).status == "completed"


@contextmanager
def _hanging_turn_and_a_short_grace(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `riposte serve` with a 1 s shutdown grace period, whose model never finishes its answer."""
    with ScriptedUpstream() as upstream:
        upstream.enqueue(hanging_reply(60))
        config = tmp_path / "riposte.yaml"
        config.write_text(f"providers:\n  - name: fake\n    base_url: {upstream.base_url}\n    api_key: k\n"
                          "shutdown_grace_seconds: 1\n")
        with ServerProcess("--config", str(config), "--log-format", "json", data_dir=tmp_path / "data") as server:
            yield server


@pytest.mark.timeout(180)
def test_a_websocket_response_still_running_after_the_grace_period_is_cut_and_the_socket_closed(
    tmp_path: Path
) -> None:
    with _hanging_turn_and_a_short_grace(tmp_path) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        with client.responses.connect() as connection:
            connection.response.create(model="fake/m", input="Take your time.")
            assert orjson.loads(connection.recv_bytes())["type"] == "response.created"
            server.send_sigterm()
            events, closed = events_until_closed(connection)
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (1001, "server shutting down")
        assert not [event for event in events if event["type"] == "response.completed"]
        assert server.wait() in (0, -15)
        log = "\n".join(server.lines())
        assert "timeout graceful shutdown exceeded" in log and "Exception in ASGI application" not in log
        cut = [entry for entry in server.json_lines()
               if entry.get("logger") == "riposte.access" and entry.get("method") == "WS"]
        assert [(entry["status"], entry["level"]) for entry in cut] == [(503, "warning")]


def _stored_as_cut_by_the_server(tmp_path: Path, response_id: str) -> None:
    """Not `cancelled`, which says the client went away: the server gave up on it."""
    row = response_row(f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'riposte.db').resolve()}", response_id)
    assert row.status == "failed"
    assert orjson.loads(row.response)["error"] == {"code": "server_error", "message": SERVER_SHUT_DOWN}


@pytest.mark.timeout(180)
def test_an_http_stream_cut_at_the_end_of_the_grace_period_is_logged_503_and_stored_failed(tmp_path: Path) -> None:
    """The server, not the client, ended it: its request line says so, instead of the 200 it began with."""
    with _hanging_turn_and_a_short_grace(tmp_path) as server:
        with httpx.stream("POST", f"{server.base_url}/responses", headers={"x-request-id": "cut-sse"}, timeout=60,
                          json={"model": "fake/m", "input": "Take your time.", "stream": True}) as reply:
            lines = reply.iter_lines()
            while "response.created" not in next(lines):  # the event line; its data line follows
                pass
            response_id = orjson.loads(next(lines).removeprefix("data: "))["response"]["id"]
            server.send_sigterm()
            with contextlib.suppress(httpx.HTTPError):
                for _ in lines:
                    pass
        assert server.wait() in (0, -15)
        cut = [entry for entry in server.json_lines() if entry.get("request_id") == "cut-sse"]
        assert [(entry["status"], entry["level"]) for entry in cut] == [(503, "warning")]
    _stored_as_cut_by_the_server(tmp_path, response_id)


@pytest.mark.timeout(180)
def test_a_json_create_cut_at_the_end_of_the_grace_period_is_a_503_envelope_and_stored_failed(
    tmp_path: Path
) -> None:
    with _hanging_turn_and_a_short_grace(tmp_path) as server:
        client = httpx.Client(timeout=60)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, f"{server.base_url}/responses",
                                  json={"model": "fake/m", "input": "Take your time."})
            database_url = f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'riposte.db').resolve()}"
            deadline = time.monotonic() + 30
            while not sql(database_url, "SELECT id FROM responses WHERE status = 'in_progress'"):
                assert time.monotonic() < deadline, "the turn never started"
                time.sleep(0.1)
            server.send_sigterm()
            reply = pending.result(timeout=60)
        assert server.wait() in (0, -15)
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "server_shutting_down")
    assert error["message"] == SERVER_SHUT_DOWN
    assert reply.headers["x-should-retry"] == "true"
    [row] = sql(database_url, "SELECT id FROM responses")
    _stored_as_cut_by_the_server(tmp_path, row.id)
