"""Background responses, cancel and stream resume on one server (SQLite and PostgreSQL).

The multi-process behaviour (replicas, a killed worker, resume from another process) is in
tests/replicas/.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from riposte.config import ProviderConfig
from riposte.store.responses import OpenResponse, ResponseStore
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import ADMIN_URL, run_admin_sql, server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply
from tests.integration.module_servers import module_upstream, server, upstream
from tests.integration.sdk import raw_stream, sdk

__all__ = ["module_upstream", "server", "upstream"]
_EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def _create(server: RunningServer, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "hi", **body}, timeout=30)


def _until_ended(server: RunningServer, response_id: str, timeout: float = 30) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        response = sdk(server).responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress") or time.monotonic() > deadline:
            return Response.model_validate(response.model_dump())
        time.sleep(0.05)


def resumed(server: RunningServer, response_id: str, starting_after: int | None = None) -> list[dict[str, Any]]:
    """GET ?stream=true[&starting_after=N]: the raw events, each validated as an SDK event."""
    params: dict[str, Any] = {"stream": "true"}
    if starting_after is not None:
        params["starting_after"] = starting_after
    events: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as http, http.stream(
            "GET", f"{server.base_url}/responses/{response_id}", params=params) as reply:
        assert reply.status_code == 200, reply.read()
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                events.append(orjson.loads(line[6:]))
    for event in events:
        _EVENT.validate_python(event)
    return events


def test_background_response_runs_and_is_polled(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("Done in the background."))
    created = sdk(server).responses.create(model="fake/m", input="hi", background=True)
    assert created.status == "queued"
    assert created.background is True
    finished = _until_ended(server, created.id)
    assert finished.status == "completed"
    assert finished.background is True
    assert finished.output_text == "Done in the background."
    # Its events were stored as it ran: the whole stream can be replayed.
    events = resumed(server, created.id)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"


def test_background_stream_then_resume_after_any_event(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("one two three four", pieces=4))
    events = raw_stream(server, {"model": "fake/m", "input": "hi", "background": True, "stream": True})
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["background"] is True
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    # As OpenAI streams a background response: created and queued while it waits, then the run.
    assert [(e["type"], e["response"]["status"]) for e in events[:3]] == [
        ("response.created", "queued"), ("response.queued", "queued"), ("response.in_progress", "in_progress")]
    assert [e["type"] for e in events].count("response.created") == 1
    assert_valid_stream(events)
    response_id = events[0]["response"]["id"]
    for cut in (0, 3, len(events) - 2):
        assert resumed(server, response_id, starting_after=cut) == events[cut + 1:]
    assert resumed(server, response_id, starting_after=len(events) - 1) == []


def test_an_ordinary_stream_is_not_kept_for_resume_by_default(server: RunningServer,
                                                              upstream: ScriptedUpstream) -> None:
    """As on OpenAI, only background responses can be streamed again unless `stream_resume` is on."""
    upstream.enqueue(text_reply("a streamed answer", pieces=3))
    events = raw_stream(server, {"model": "fake/m", "input": "hi", "stream": True})
    response_id = events[0]["response"]["id"]
    assert sdk(server).responses.retrieve(response_id).status == "completed"
    reply = httpx.get(f"{server.base_url}/responses/{response_id}", params={"stream": "true"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "stream"
    assert "stream_resume" in reply.json()["error"]["message"]


@pytest.fixture
def resuming_server(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    with server_factory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'resume.db'}") as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                      stream_resume=True)


def test_stored_stream_is_resumable_with_stream_resume(resuming_server: RunningServer,
                                                       upstream: ScriptedUpstream) -> None:
    server = resuming_server
    upstream.enqueue(text_reply("a streamed answer", pieces=3))
    events = raw_stream(server, {"model": "fake/m", "input": "hi", "stream": True})
    response_id = events[0]["response"]["id"]
    assert resumed(server, response_id, starting_after=2) == events[3:]
    assert resumed(server, response_id) == events
    # Past what a sequence number column holds: a 400 naming it, not a broken stream.
    reply = httpx.get(f"{server.base_url}/responses/{response_id}",
                      params={"stream": "true", "starting_after": 10**23})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "starting_after"


def test_resume_needs_a_stored_stream(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("not streamed"))
    plain = _create(server).json()
    reply = httpx.get(f"{server.base_url}/responses/{plain['id']}", params={"stream": "true"})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "stream"
    reply = httpx.get(f"{server.base_url}/responses/{plain['id']}", params={"starting_after": 1})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "starting_after"


def test_background_must_be_stored(server: RunningServer) -> None:
    reply = _create(server, background=True, store=False)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "store"


def test_cancel_running_background_response(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(slow_reply("word " * 200, delay_s=0.05, pieces=200))
    created = sdk(server).responses.create(model="fake/m", input="hi", background=True)
    deadline = time.monotonic() + 30
    while sdk(server).responses.retrieve(created.id).status != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.02)
    cancelled = sdk(server).responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert upstream.wait_for_disconnect(10), "cancelling must stop the upstream call"
    again = sdk(server).responses.cancel(created.id)  # idempotent
    assert again.status == "cancelled"
    assert sdk(server).responses.retrieve(created.id).status == "cancelled"


def test_cancel_refusals(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply("finished"), text_reply("foreground"))
    created = sdk(server).responses.create(model="fake/m", input="hi", background=True)
    _until_ended(server, created.id)
    finished = httpx.post(f"{server.base_url}/responses/{created.id}/cancel", json={})
    assert finished.status_code == 409
    assert finished.json()["error"]["param"] == "response_id"
    foreground = _create(server).json()
    assert httpx.post(f"{server.base_url}/responses/{foreground['id']}/cancel", json={}).status_code == 409
    assert httpx.post(f"{server.base_url}/responses/resp_unknown/cancel", json={}).status_code == 404


def test_cancel_during_the_workers_first_write(server: RunningServer, upstream: ScriptedUpstream,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel that stops the turn while it marks itself started (the row already `in_progress`,
    the write not yet returned) still ends it `cancelled`, not `in_progress` under an ended job."""
    marked = threading.Event()
    original = ResponseStore.start_background

    async def slow_start(self: ResponseStore, opened: OpenResponse, response: dict[str, Any]) -> bool:
        done = await original(self, opened, response)
        marked.set()
        await asyncio.sleep(30)  # a slow commit: the cancel lands here
        return done

    monkeypatch.setattr(ResponseStore, "start_background", slow_start)
    upstream.enqueue(text_reply("never delivered"))
    created = sdk(server).responses.create(model="fake/m", input="hi", background=True)
    assert marked.wait(10)
    assert sdk(server).responses.cancel(created.id).status == "cancelled"
    assert _until_ended(server, created.id, timeout=10).status == "cancelled"


@pytest.fixture
def idle_server(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    """A server that queues background responses but runs none (no workers), on a database of its
    own: on the shared one, other tests' servers would run its jobs. (The same on PostgreSQL, with
    replicas: tests/replicas/test_replicas.py.)"""
    with server_factory(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'idle.db'}") as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")],
                      background_workers=0)


def test_cancel_queued_background_response(idle_server: RunningServer, upstream: ScriptedUpstream) -> None:
    created = sdk(idle_server).responses.create(model="fake/m", input="hi", background=True)
    cancelled = sdk(idle_server).responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output == []
    assert sdk(idle_server).responses.cancel(created.id).status == "cancelled"
    assert upstream.requests == []
    # A stream of it shows it queued, then ends at once: the response is over.
    assert [(e["type"], e["response"]["status"]) for e in resumed(idle_server, created.id)] == [
        ("response.created", "queued"), ("response.queued", "queued")]


def test_ready_until_the_database_goes_away(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    name = f"riposte_ready_{secrets.token_hex(4)}"
    run_admin_sql(ADMIN_URL, f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
    try:
        with server_factory(tmp_path, url) as factory:
            ready_server = factory(providers=[ProviderConfig(name="fake", base_url=upstream.base_url,
                                                             api_key="x")])
            root = ready_server.base_url.removesuffix("/v1")
            reply = httpx.get(f"{root}/ready", timeout=10)
            assert (reply.status_code, reply.json()) == (200, {"status": "ready"})
            run_admin_sql(ADMIN_URL, f'DROP DATABASE "{name}" WITH (FORCE)')
            reply = httpx.get(f"{root}/ready", timeout=10)
            assert (reply.status_code, reply.json()) == (503, {"status": "database unreachable"})
            assert httpx.get(f"{root}/health", timeout=10).status_code == 200, "liveness does not need the database"
    finally:
        run_admin_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
