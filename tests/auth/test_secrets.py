"""Upstream secrets never reach a client or the logs, even when the upstream echoes them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from riposte.redact import redact
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, error_reply

UPSTREAM_KEY = "sk-upstream-secret-0123456789"  # the scripted provider's key (conftest.start_server)


def test_upstream_error_bodies_are_stripped_of_credentials(
    start_server: Callable[..., RunningServer], upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server()
    leaky = (f"Incorrect API key provided: {UPSTREAM_KEY}. Also tried Authorization: Bearer abcdefgh12345678 "
             "and https://up.example/v1?api_key=hunter2hunter2")
    upstream.enqueue(error_reply(401, leaky, "invalid_api_key"), error_reply(500, leaky))
    with caplog.at_level("DEBUG"):
        plain = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "hi"}, timeout=30)
        streamed = httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "hi", "stream": True},
                              timeout=30)
    assert plain.status_code == 502  # the upstream refused our key: not the client's fault
    for text in (plain.text, streamed.text, caplog.text):
        assert UPSTREAM_KEY not in text
        assert "abcdefgh12345678" not in text and "hunter2hunter2" not in text
    assert "Incorrect API key provided: [REDACTED]" in plain.json()["error"]["message"]
    assert "[REDACTED]" in streamed.text
    listed = httpx.get(f"{server.base_url}/responses", timeout=30).text
    assert UPSTREAM_KEY not in listed


def test_redaction_keeps_ordinary_text() -> None:
    assert redact("model 'gpt-4o' does not exist") == "model 'gpt-4o' does not exist"
    assert redact('{"api_key": "abc123xyz"}') == '{"api_key": "[REDACTED]"}'
    assert redact("token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl here") == "token [REDACTED] here"
