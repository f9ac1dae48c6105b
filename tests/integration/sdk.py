"""Helpers for driving a running server with the official SDK, strictly.

The SDK's own parsing is lenient (it constructs models without validating), so these helpers
read the raw wire and validate every event and response with the SDK types' validators.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.testing.server import RunningServer

_EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def sdk(server: RunningServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30, **kwargs)


def stream_events(server: RunningServer, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
    """POST a streaming create and return its events, each validated as an SDK event type."""
    raw = raw_stream(server, {**params, "stream": True}, headers)
    return [_EVENT.validate_python(event) for event in raw]


def raw_stream(server: RunningServer, body: dict[str, Any], headers: dict[str, str] | None = None) -> list[Any]:
    events: list[Any] = []
    saw_done = False
    event_name: str | None = None
    with httpx.Client(timeout=30) as http, http.stream(
        "POST", f"{server.base_url}/responses", json=body, headers=headers or {}
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                event_name = line[7:]
            elif line == "data: [DONE]":
                saw_done = True
            elif line.startswith("data: "):
                event = orjson.loads(line[6:])
                assert event_name == event["type"], "the event: line must name the data's type"
                events.append(event)
                event_name = None
    assert saw_done, "the stream must end with data: [DONE]"
    return events


def strict_create(server: RunningServer, headers: dict[str, str] | None = None, **params: Any) -> Response:
    """A non-streaming create whose body must validate as the SDK's Response type."""
    reply = httpx.post(f"{server.base_url}/responses", json=params, headers=headers or {}, timeout=30)
    assert reply.status_code == 200, reply.text
    return Response.model_validate(reply.json())
