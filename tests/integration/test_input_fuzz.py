"""Property: no create-response body, however malformed, makes the server fail on its own.

Bodies come from the request grammar (`request_grammar.py`), mostly valid field by field and at
times hostile. The scripted upstream always answers, so there is no upstream fault to excuse a
5xx: every response is a 2xx that ends as completed and is stored, or a 4xx in the OpenAI envelope
naming the parameter. Runs on SQLite and PostgreSQL with a fixed seed, so CI sees the same cases.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.module_servers import module_upstream, server, upstream
from tests.integration.request_grammar import conversation_bodies, create_bodies

__all__ = ["module_upstream", "server", "upstream"]  # fixtures

# Per backend. Each case is one HTTP request.
FUZZ_CASES = 100
CONVERSATION_FUZZ_CASES = 50


@settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(body=create_bodies())
def test_no_request_body_makes_the_server_fail(server: RunningServer, upstream: ScriptedUpstream,
                                              body: dict[str, Any]) -> None:
    upstream.reset()
    upstream.enqueue(text_reply("fine"))
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post("/responses", content=_encoded(body), headers={"content-type": "application/json"})
        if response.status_code >= 400:
            _assert_client_error(response)
        elif body.get("stream") is True:
            _assert_completed_stream(response)
        else:
            _assert_completed_and_stored(client, response.json())


@settings(max_examples=CONVERSATION_FUZZ_CASES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(body=conversation_bodies())
def test_no_conversation_body_makes_the_server_fail(server: RunningServer, body: dict[str, Any]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post("/conversations", content=_encoded(body), headers={"content-type": "application/json"})
        if response.status_code >= 400:
            _assert_client_error(response)
            return
        items = client.get(f"/conversations/{response.json()['id']}/items", params={"order": "asc"})
        assert items.status_code == 200, items.text
        assert len(items.json()["data"]) == len(body["items"] or [])


def _encoded(body: dict[str, Any]) -> bytes:
    # The standard encoder, not orjson: it writes what orjson refuses (deep nesting, 2**70),
    # as clients in other languages do.
    import json

    return json.dumps(body).encode()


def _assert_client_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["param"], str) and error["param"], response.text


def _assert_completed_stream(response: httpx.Response) -> None:
    events = [orjson.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    assert_valid_stream(events)
    assert events[-1]["type"] == "response.completed", events[-1]


def _assert_completed_and_stored(client: httpx.Client, created: dict[str, Any]) -> None:
    assert created["status"] == "completed", created
    stored = client.get(f"/responses/{created['id']}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["output"] == created["output"]
    assert client.get(f"/responses/{created['id']}/input_items").status_code == 200
