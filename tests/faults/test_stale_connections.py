"""Issue 17: a pooled keep-alive connection the upstream already closed fails the request before
any byte of the answer; such a request is retried once on a fresh connection, and nothing is ever
retried after the first byte.

`ScriptedUpstream(reset_idle_after_s=...)` forgets a connection idle for longer than that and resets
it when the next request arrives on it: the close-crosses-request race, made to happen every time.
`keep_alive_s` is uvicorn's own idle close (a FIN the client usually sees in time)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from riposte.config import ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, dropped_reply, text_reply

RETRY_LOGGER = "riposte.inference.stale_connections"
IDLE_CLOSE_S = 0.05
PAUSE_S = 0.07  # longer than the upstream's idle close, far shorter than our pool's keep-alive

Call = Callable[[httpx.Client, RunningServer], str]


def responses_streaming(http: httpx.Client, server: RunningServer) -> str:
    body = {"model": "fake/m", "input": "hi", "stream": True}
    with http.stream("POST", f"{server.base_url}/responses", json=body) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: {")]
    return str(orjson.loads(lines[-1][6:])["type"])


def responses_json(http: httpx.Client, server: RunningServer) -> str:
    reply = http.post(f"{server.base_url}/responses", json={"model": "fake/m", "input": "hi"})
    return f"response.{reply.json()['status']}" if reply.status_code == 200 else reply.text


def chat_json(http: httpx.Client, server: RunningServer) -> str:
    """The non-streaming chat passthrough: the SDK's own HTTP client, not aiohttp."""
    reply = http.post(f"{server.base_url}/chat/completions",
                      json={"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]})
    return "response.completed" if reply.status_code == 200 else reply.text


CALLS = {"responses_streaming": responses_streaming, "responses_json": responses_json, "chat_json": chat_json}


def _server(tmp_path: Path, upstream: ScriptedUpstream) -> RunningServer:
    return RunningServer(Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}",
        providers=[ProviderConfig(name="fake", base_url=upstream.base_url, api_key="x")]))


@pytest.fixture(scope="module")
def resetting_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream(reset_idle_after_s=IDLE_CLOSE_S) as fake:
        yield fake


@pytest.fixture(scope="module")
def resetting_server(tmp_path_factory: pytest.TempPathFactory,
                     resetting_upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    with _server(tmp_path_factory.mktemp("stale"), resetting_upstream) as server:
        yield server


def _run(server: RunningServer, call: Call, *, workers: int, requests: int) -> list[str]:
    """`requests` calls spread over `workers` threads, each pausing past the idle close before
    every third of its calls."""

    def worker(count: int) -> list[str]:
        outcomes = []
        with httpx.Client(timeout=30) as http:
            for index in range(count):
                if index % 3 == 2:
                    time.sleep(PAUSE_S)
                outcomes.append(call(http, server))
        return outcomes

    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(worker, [requests // workers] * workers)
    return [outcome for result in results for outcome in result]


@pytest.mark.parametrize("name", ["responses_streaming", "chat_json"])  # the aiohttp and the SDK client
def test_an_upstream_closing_idle_connections_fails_no_request(
    name: str, resetting_server: RunningServer, resetting_upstream: ScriptedUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resetting_upstream.reset()
    resets_before = resetting_upstream.connections.resets
    retries_counted_before = counted_retries(resetting_upstream)
    resetting_upstream.enqueue(*[text_reply("fine") for _ in range(500)])
    with caplog.at_level(logging.WARNING, logger=RETRY_LOGGER):
        outcomes = _run(resetting_server, CALLS[name], workers=1, requests=250)
        outcomes += _run(resetting_server, CALLS[name], workers=10, requests=250)

    assert [o for o in outcomes if o != "response.completed"] == []
    assert len(resetting_upstream.requests) == 500 and resetting_upstream.pending == 0
    retries = [r for r in caplog.records if r.name == RETRY_LOGGER]
    resets = resetting_upstream.connections.resets - resets_before
    # The stale connections were really met, and each was retried exactly once, with its cause.
    assert resets >= 80 and len(retries) == resets
    assert all("retrying once on a fresh connection" in r.getMessage() for r in retries)
    assert counted_retries(resetting_upstream) - retries_counted_before == resets  # and in /metrics


def counted_retries(upstream: ScriptedUpstream) -> float:
    """riposte_upstream_retries_total for this upstream, over every cause (the server runs in
    this process, so its metrics are in the default registry)."""
    origin = upstream.base_url.removesuffix("/v1")
    return sum(sample.value for family in REGISTRY.collect() if family.name == "riposte_upstream_retries"
               for sample in family.samples
               if sample.name.endswith("_total") and sample.labels.get("upstream") == origin)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_upstream_closing_idle_connections_itself_fails_no_request(name: str, tmp_path: Path) -> None:
    """uvicorn's own 50 ms keep-alive, closing with a FIN that can cross a request."""
    with ScriptedUpstream(keep_alive_s=IDLE_CLOSE_S) as upstream, _server(tmp_path, upstream) as server:
        upstream.enqueue(*[text_reply("fine") for _ in range(150)])
        outcomes = _run(server, CALLS[name], workers=1, requests=75) + _run(server, CALLS[name], workers=5,
                                                                             requests=75)
    assert [o for o in outcomes if o != "response.completed"] == []


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_upstream_closing_after_a_few_requests_fails_no_request(name: str, tmp_path: Path) -> None:
    with ScriptedUpstream(reset_after_requests=3) as upstream, _server(tmp_path, upstream) as server:
        upstream.enqueue(*[text_reply("fine") for _ in range(60)])
        with httpx.Client(timeout=30) as http:
            outcomes = [CALLS[name](http, server) for _ in range(60)]
        assert upstream.connections.resets >= 10
    assert [o for o in outcomes if o != "response.completed"] == []


def _warm_then_drop(server: RunningServer, upstream: ScriptedUpstream, call: Call) -> str:
    """One good call, so the pool holds a connection; then an answer dropped after its first bytes,
    which must reach the upstream exactly once. Returns what the client saw of the second call."""
    upstream.reset()
    upstream.enqueue(text_reply("warm"), dropped_reply("one two three four", after_chunks=2))
    with httpx.Client(timeout=30) as http:
        assert call(http, server) == "response.completed"
        outcome = call(http, server)
    assert len(upstream.requests) == 2
    return outcome


@pytest.fixture(scope="module")
def plain_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory, plain_upstream: ScriptedUpstream,
                 ) -> Iterator[RunningServer]:
    with _server(tmp_path_factory.mktemp("plain"), plain_upstream) as server:
        yield server


def test_nothing_is_retried_after_the_first_byte(
    plain_server: RunningServer, plain_upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=RETRY_LOGGER):
        assert _warm_then_drop(plain_server, plain_upstream, responses_streaming) == "response.failed"
    assert not [r for r in caplog.records if r.name == RETRY_LOGGER]
    [stored] = httpx.get(f"{plain_server.base_url}/responses?limit=1").json()["data"]
    assert stored["status"] == "failed" and stored["output"][0]["content"][0]["text"] == "one "


def test_nothing_is_retried_after_the_headers_on_the_sdk_path(
    plain_server: RunningServer, plain_upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=RETRY_LOGGER):
        outcome = _warm_then_drop(plain_server, plain_upstream, chat_json)
    assert "upstream request failed" in outcome
    assert not [r for r in caplog.records if r.name == RETRY_LOGGER]
