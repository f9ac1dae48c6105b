"""`/v1/chat/completions` passed through: a failing upstream gives a real status before the first
chunk, and an `error` data line then `[DONE]` after it; the non-streaming path (the SDK's client)
maps every fault to an error envelope, never a 500."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import (
    Reply,
    ScriptedUpstream,
    error_reply,
    hanging_reply,
    raw_reply,
    reset_reply,
    text_reply,
)
from tests.faults.test_upstream_faults import CHUNK

MESSAGES = [{"role": "user", "content": "hi"}]


def _stream_lines(server: RunningServer) -> tuple[int, list[str]]:
    body = {"model": "fake/m", "messages": MESSAGES, "stream": True}
    with httpx.Client(timeout=10) as http, http.stream("POST", f"{server.base_url}/chat/completions",
                                                        json=body) as reply:
        return reply.status_code, [line for line in reply.iter_lines() if line]


@pytest.mark.parametrize(("reply", "message"), [
    (raw_reply(CHUNK, b"data: {not json\n\n"), "malformed chunk"),
    (reset_reply("one two three four", after_chunks=2), "upstream connection failed"),
    (raw_reply(CHUNK, b"data: 12\n\n"), "not a JSON object"),
])
def test_a_fault_after_the_first_chunk_ends_with_an_error_line_and_done(
    reply: Reply, message: str, fault_server: RunningServer, fault_upstream: ScriptedUpstream
) -> None:
    fault_upstream.enqueue(reply)
    status, lines = _stream_lines(fault_server)
    assert status == 200
    assert lines[-1] == "data: [DONE]"
    error = orjson.loads(lines[-2].removeprefix("data: "))["error"]
    assert message in error["message"] and error["code"]


@pytest.mark.parametrize(("reply", "status", "message"), [
    (error_reply(500, "backend exploded"), 502, "backend exploded"),
    (error_reply(429, "slow down"), 429, "slow down"),
    (hanging_reply(10), 502, "first-byte deadline of 0.5 s"),
    (raw_reply(b"<html>oops</html>", content_type="text/html"), 502, "content type 'text/html'"),
    (raw_reply(b"data: {not json\n\n"), 502, "malformed chunk"),
])
def test_a_fault_before_the_first_chunk_gets_a_status(
    reply: Reply, status: int, message: str, fault_server: RunningServer, fault_upstream: ScriptedUpstream
) -> None:
    fault_upstream.enqueue(reply)
    got, lines = _stream_lines(fault_server)
    assert got == status
    assert message in orjson.loads(lines[0])["error"]["message"]
    _wait_until_upstream_idle(fault_upstream)


@pytest.mark.parametrize(("reply", "status", "message"), [
    (error_reply(500, "backend exploded"), 502, "backend exploded"),
    (error_reply(400, "bad prompt"), 400, "bad prompt"),
    (hanging_reply(10), 502, "first-byte deadline of 0.5 s"),
    (raw_reply(b"<html>oops</html>", content_type="text/html"), 502, "not JSON"),
    (raw_reply(b"[1, 2]", content_type="application/json"), 502, "not an object"),
])
def test_non_streaming_faults_map_to_an_error_envelope(
    reply: Reply, status: int, message: str, fault_server: RunningServer, fault_upstream: ScriptedUpstream
) -> None:
    fault_upstream.enqueue(reply)
    got = httpx.post(f"{fault_server.base_url}/chat/completions", json={"model": "fake/m", "messages": MESSAGES},
                     timeout=10)
    assert got.status_code == status, got.text
    error = got.json()["error"]
    assert message in error["message"] and error["code"]
    fault_upstream.enqueue(text_reply("fine"))
    again = httpx.post(f"{fault_server.base_url}/chat/completions", json={"model": "fake/m", "messages": MESSAGES},
                       timeout=10)
    assert again.json()["choices"][0]["message"]["content"] == "fine"


def test_non_streaming_connection_refused_is_a_502(fault_server: RunningServer) -> None:
    got = httpx.post(f"{fault_server.base_url}/chat/completions", json={"model": "refused/m", "messages": MESSAGES},
                     timeout=10)
    assert got.status_code == 502
    assert "upstream request failed" in got.json()["error"]["message"]


def _wait_until_upstream_idle(upstream: ScriptedUpstream) -> None:
    deadline = time.monotonic() + 5
    while upstream.connections.busy:
        assert time.monotonic() < deadline, "an upstream connection was left mid-request"
        time.sleep(0.02)
