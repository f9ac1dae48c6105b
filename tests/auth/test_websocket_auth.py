"""WebSocket mode has the HTTP API's authentication, project isolation, browser protections and
per-key limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from riposte.testing.grammar import TERMINAL_EVENT_TYPES
from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply


def socket_url(server: RunningServer) -> str:
    return server.base_url.replace("http://", "ws://") + "/responses"


def open_socket(server: RunningServer, key: str | None, **headers: str) -> ClientConnection:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return connect(socket_url(server), additional_headers=headers, open_timeout=30)


def refused(server: RunningServer, key: str | None, **headers: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as raised:
        open_socket(server, key, **headers)
    response = raised.value.response
    return response.status_code, json.loads(response.body or b"{}")["error"]


def create(socket: ClientConnection, **params: Any) -> list[dict[str, Any]]:
    socket.send(json.dumps({"type": "response.create", "model": "fake/m", **params}))
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in TERMINAL_EVENT_TYPES | {"error"}:
        events.append(json.loads(socket.recv(timeout=30)))
    return events


def test_keys_projects_and_origins_are_checked_as_over_http(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    alpha, beta = deployment.create_key("alpha"), deployment.create_key("beta")
    server = start_server()
    status, error = refused(server, None)
    assert (status, error["code"]) == (401, "missing_api_key")
    status, error = refused(server, alpha[:-4] + ("AAAA" if not alpha.endswith("AAAA") else "BBBB"))
    assert (status, error["code"]) == (401, "invalid_api_key")
    status, error = refused(server, alpha, Origin="https://evil.example")
    assert (status, error["code"]) == (403, "origin_not_allowed")

    upstream.enqueue(text_reply("alpha's answer"))
    with open_socket(server, alpha) as socket:
        answered = create(socket, input="hello")
    assert answered[-1]["type"] == "response.completed"
    alpha_response = answered[0]["response"]["id"]
    assert openai.OpenAI(base_url=server.base_url, api_key=alpha).responses.retrieve(alpha_response).id == \
        alpha_response

    with open_socket(server, beta) as socket:
        error = create(socket, input="continue theirs", previous_response_id=alpha_response)[-1]
    assert (error["type"], error["status"], error["error"]["code"]) == ("error", 400, "previous_response_not_found")
    with pytest.raises(openai.NotFoundError):
        openai.OpenAI(base_url=server.base_url, api_key=beta, max_retries=0).responses.retrieve(alpha_response)
    assert len(upstream.requests) == 1


def test_a_revoked_key_ends_the_connection(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    key = deployment.create_key("alpha")
    server = start_server()
    upstream.enqueue(text_reply("before"))
    with open_socket(server, key) as socket:
        assert create(socket, input="one")[-1]["type"] == "response.completed"
        assert deployment.keys("revoke", key.split("_")[1])[0] == 0
        error = create(socket, input="two")[-1]
        assert (error["type"], error["status"], error["error"]["code"]) == ("error", 401, "invalid_api_key")
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert len(upstream.requests) == 1


def test_each_response_counts_against_the_key_limits(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    key = deployment.create_key("alpha", "--max-concurrent-requests", "1")
    server = start_server()
    upstream.enqueue(slow_reply("one two three four five six", delay_s=0.2, pieces=6), text_reply("after"))
    with open_socket(server, key) as socket:
        socket.send(json.dumps({"type": "response.create", "model": "fake/m", "input": "slow", "stream_id": "a"}))
        assert json.loads(socket.recv(timeout=30))["type"] == "response.created"
        refused_event = create(socket, input="second at once", stream_id="b")[-1]
        assert (refused_event["status"], refused_event["error"]["code"], refused_event["stream_id"]) == (
            429, "rate_limit_exceeded", "b")
        assert int(refused_event["error"]["headers"]["retry-after"]) >= 1
        while json.loads(socket.recv(timeout=30))["type"] not in TERMINAL_EVENT_TYPES:
            pass
        assert create(socket, input="after the first", stream_id="b")[-1]["type"] == "response.completed"
