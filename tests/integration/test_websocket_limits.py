"""WebSocket mode's bounds: message size, requests pending per connection, idle time, connection
time, and a client that leaves mid-response. Storage does not matter here but for the last test,
which runs on both backends."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from riposte.api.websocket_settings import WebSocketSettings
from riposte.config import ProviderConfig
from riposte.testing.grammar import TERMINAL_EVENT_TYPES
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply

MAX_MESSAGE_BYTES = 64 * 1024


@pytest.fixture
def sqlite_servers(tmp_path: Path) -> Iterator[ServerFactory]:
    data_dir = tmp_path / "data"
    with server_factory(data_dir, f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}") as factory:
        yield factory


def start(factory: ServerFactory, upstream: ScriptedUpstream, **websocket: Any) -> RunningServer:
    return factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                   max_request_bytes=MAX_MESSAGE_BYTES, websocket=WebSocketSettings(**websocket))


def open_socket(server: RunningServer) -> ClientConnection:
    return connect(server.base_url.replace("http://", "ws://") + "/responses", open_timeout=30)


def send_create(socket: ClientConnection, text: str, **params: Any) -> None:
    socket.send(json.dumps({"type": "response.create", "model": "fake/m", "input": text, **params}))


def receive(socket: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(socket.recv(timeout=30))
    return event


def closed_with(socket: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None, "the server must close with a code"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_size_pending_and_idle_bounds(sqlite_servers: ServerFactory, upstream: ScriptedUpstream) -> None:
    server = start(sqlite_servers, upstream, max_pending_responses=2, idle_timeout_seconds=1.0)

    with open_socket(server) as socket:
        send_create(socket, "x" * (MAX_MESSAGE_BYTES + 1))
        assert closed_with(socket)[0] == 1009  # the request size limit, per message

    upstream.enqueue(slow_reply("one two three", delay_s=0.1, pieces=3), text_reply("two"))
    with open_socket(server) as socket:
        for text in ("first", "second", "third"):
            send_create(socket, text)
        events: list[dict[str, Any]] = []
        while sum(event["type"] in TERMINAL_EVENT_TYPES | {"error"} for event in events) < 3:
            events.append(receive(socket))
    errors = [event for event in events if event["type"] == "error"]
    assert [(error["status"], error["error"]["code"]) for error in errors] == [(429, "rate_limit_exceeded")]
    assert "limit 2" in errors[0]["error"]["message"]
    answers = [event["response"]["output"][0]["content"][0]["text"] for event in events
               if event["type"] == "response.completed"]
    assert answers == ["one two three", "two"]

    with open_socket(server) as socket:
        assert closed_with(socket) == (1000, "idle timeout")


def test_connection_time_limit_lets_the_running_response_finish(
    sqlite_servers: ServerFactory, upstream: ScriptedUpstream
) -> None:
    server = start(sqlite_servers, upstream, max_connection_seconds=1.0)
    upstream.enqueue(slow_reply("a b c d e f g h i j", delay_s=0.2, pieces=10))
    with open_socket(server) as socket:
        send_create(socket, "long")
        events: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                events.append(receive(socket))
    kinds = [event["type"] for event in events]
    assert "response.completed" in kinds and "error" in kinds
    limit = events[kinds.index("error")]
    assert limit["error"]["code"] == "websocket_connection_limit_reached"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_a_client_that_leaves_cancels_its_response(make_server: ServerFactory, upstream: ScriptedUpstream) -> None:
    server = make_server(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")])
    upstream.enqueue(slow_reply("word " * 200, delay_s=0.05, pieces=200))
    with open_socket(server) as socket:
        send_create(socket, "talk for a while")
        response_id = receive(socket)["response"]["id"]
        while receive(socket)["type"] != "response.output_text.delta":
            pass
    assert upstream.wait_for_disconnect(timeout=30)
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{server.base_url}/responses/{response_id}").json()["status"]) == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "cancelled"


def test_a_peer_that_never_answers_pings_is_dropped(sqlite_servers: ServerFactory, upstream: ScriptedUpstream) -> None:
    """The keep-alive settings reach uvicorn: a raw client that completes the handshake and then
    stays silent gets pings, and is disconnected when no pong comes back."""
    server = start(sqlite_servers, upstream, ping_interval_seconds=0.2, ping_timeout_seconds=0.2)
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=30) as raw:
        key = base64.b64encode(os.urandom(16)).decode()
        raw.sendall((f"GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:{server.settings.port}\r\n"
                     f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += raw.recv(4096)
        head, _, frames = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        while chunk := raw.recv(4096):  # read until the server hangs up
            frames += chunk
    opcodes = _opcodes(frames)
    assert opcodes[0] == 0x9, opcodes  # a ping first
    assert 0x8 in opcodes  # then the close, after no pong came back


def _opcodes(data: bytes) -> list[int]:
    """The opcodes of unmasked server frames (payloads under 126 bytes, as pings and closes are)."""
    opcodes = []
    while len(data) >= 2:
        length = data[1] & 0x7F
        opcodes.append(data[0] & 0x0F)
        data = data[2 + length:]
    return opcodes
