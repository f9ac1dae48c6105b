"""Per-key limits: excess gets 429 with Retry-After in the OpenAI envelope at once, never a hang,
and the server stays healthy for everyone else."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from riposte.testing.server import RunningServer
from tests.auth.conftest import Deployment
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply, text_reply


def client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=30)


def assert_rate_limited(reply: httpx.Response) -> None:
    assert reply.status_code == 429, reply.text
    assert int(reply.headers["retry-after"]) >= 1
    error = reply.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "Retry after" in error["message"]


def test_requests_per_minute_is_a_token_bucket(
    deployment: Deployment, start_server: Callable[..., RunningServer]
) -> None:
    limited = deployment.create_key("team-a", "--requests-per-minute", "2")
    other = deployment.create_key("team-a")
    server = start_server()
    for _ in range(2):
        assert client(server, limited).models.list() is not None
    started = time.monotonic()
    reply = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {limited}"})
    assert time.monotonic() - started < 2, "a limited request must be refused at once"
    assert_rate_limited(reply)
    assert int(reply.headers["retry-after"]) <= 30
    with pytest.raises(openai.RateLimitError):
        client(server, limited).models.list()
    assert client(server, other).models.list() is not None  # other keys are not affected
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health").status_code == 200


def test_concurrent_requests_and_streams_over_the_limit_get_429(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    key = deployment.create_key("team-a", "--max-concurrent-requests", "1")
    server = start_server()
    upstream.enqueue(slow_reply("one two three four five six", delay_s=0.3, pieces=6))
    streamed: list[str] = []

    def stream() -> None:
        with client(server, key).responses.stream(model="fake/m", input="count") as events:
            streamed.append(events.get_final_response().output_text)

    worker = threading.Thread(target=stream)
    worker.start()
    deadline = time.monotonic() + 5
    while not upstream.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.requests, "the stream never reached the upstream"
    auth = {"Authorization": f"Bearer {key}"}
    assert_rate_limited(httpx.get(f"{server.base_url}/models", headers=auth))
    assert_rate_limited(httpx.post(f"{server.base_url}/responses", headers=auth,
                                   json={"model": "fake/m", "input": "x", "stream": True}))
    worker.join(timeout=30)
    assert streamed == ["one two three four five six"]
    upstream.enqueue(text_reply("fine"))
    assert client(server, key).responses.create(model="fake/m", input="again").output_text == "fine"


def test_too_many_input_items_get_429(deployment: Deployment, start_server: Callable[..., RunningServer]) -> None:
    key = deployment.create_key("team-a", "--max-input-items", "2")
    server = start_server()
    items = [{"role": "user", "content": f"line {n}"} for n in range(3)]
    reply = httpx.post(f"{server.base_url}/responses", headers={"Authorization": f"Bearer {key}"},
                       json={"model": "fake/m", "input": items})
    assert_rate_limited(reply)
    assert reply.json()["error"]["param"] == "input"
def test_the_file_storage_quota_gets_429(deployment: Deployment, start_server: Callable[..., RunningServer]) -> None:
    key = deployment.create_key("team-a", "--file-storage-bytes", "1000")
    server = start_server()
    files = client(server, key).files
    kept = files.create(file=("a.txt", b"a" * 600), purpose="assistants")
    with pytest.raises(openai.RateLimitError) as raised:
        files.create(file=("b.txt", b"b" * 600), purpose="assistants")
    assert raised.value.response.headers["retry-after"]
    assert [f.id for f in files.list()] == [kept.id]
    files.delete(kept.id)
    assert files.create(file=("b.txt", b"b" * 600), purpose="assistants").bytes == 600


def _background(server: RunningServer, key: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "fake/m", "input": "x", "background": True})


def test_unfinished_background_responses_count_against_the_concurrency_limit(
    deployment: Deployment, start_server: Callable[..., RunningServer]
) -> None:
    # No workers: what is queued stays queued, so the count is exact.
    limited = deployment.create_key("team-a", "--max-concurrent-requests", "2")
    other = deployment.create_key("team-a")
    server = start_server(background_workers=0)
    queued = [_background(server, limited) for _ in range(2)]
    assert [reply.json()["status"] for reply in queued] == ["queued", "queued"]
    refused = _background(server, limited)
    assert_rate_limited(refused)
    assert refused.json()["error"]["param"] == "background"
    assert "background" in refused.json()["error"]["message"]
    assert _background(server, other).status_code == 200  # other keys are not affected
    # A cancelled response has ended: its slot is free, and the refused create left nothing behind.
    assert client(server, limited).responses.cancel(queued[0].json()["id"]).status == "cancelled"
    assert _background(server, limited).status_code == 200
    assert_rate_limited(_background(server, limited))


def test_a_running_background_response_holds_its_slot_until_it_ends(
    deployment: Deployment, start_server: Callable[..., RunningServer], upstream: ScriptedUpstream
) -> None:
    key = deployment.create_key("team-a", "--max-concurrent-requests", "1")
    server = start_server(background_poll_seconds=0.05)
    upstream.enqueue(slow_reply("one two three four", delay_s=0.2, pieces=4), text_reply("second"))
    first = _background(server, key).json()["id"]
    sdk = client(server, key)
    deadline = time.monotonic() + 10
    while sdk.responses.retrieve(first).status != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_rate_limited(_background(server, key))
    deadline = time.monotonic() + 30
    while sdk.responses.retrieve(first).status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sdk.responses.retrieve(first).output_text == "one two three four"
    second = _background(server, key)
    assert second.status_code == 200, second.text


def test_concurrent_background_creates_cannot_pass_the_limit_together(
    deployment: Deployment, start_server: Callable[..., RunningServer]
) -> None:
    key = deployment.create_key("team-a", "--max-concurrent-requests", "3")
    server = start_server(background_workers=0)
    # Two clients at once: never more requests in flight than the limit, so only the count of
    # unfinished background responses can refuse, and it must stop at exactly the limit.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(reply.status_code for reply in pool.map(lambda _: _background(server, key), range(12)))
    assert statuses == [200] * 3 + [429] * 9, statuses
