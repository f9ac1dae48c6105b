"""Acceptance (issue 15): several Riposte processes on one PostgreSQL database.

Three worker replicas (A, B, C) and one front replica (F, no background workers, so whatever it is
asked to run or cancel happens on another process) share a fresh database and one scripted
upstream. Each replica calls the upstream with its own API key, so the upstream's call log tells
which replica made each call.

"Run to completion" is defined on that call log: an upstream stream that ended `completed` for the
response's unique input. A replica killed with SIGKILL may have finished an upstream stream whose
result it never stored; that attempt is retried elsewhere. So the test asserts that each response
completed upstream at most once on the replicas that stayed alive, and that its stored output is
exactly one answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import yaml

from tests.conftest import scratch_postgres_database
from tests.fakes.scripted_upstream import Reply, ScriptedUpstream, slow_reply
from tests.integration.server_process import ServerProcess

TERMINAL = {"completed", "failed", "incomplete", "cancelled"}
TERMINAL_EVENTS = {"response.completed", "response.failed", "response.incomplete"}
JOBS = 300
# Short leases and polls keep the test fast; the defaults suit production.
FAST = {"RIPOSTE_BACKGROUND_LEASE_SECONDS": "4", "RIPOSTE_BACKGROUND_POLL_SECONDS": "0.1",
        "RIPOSTE_RESUME_POLL_SECONDS": "0.05", "RIPOSTE_EVENT_FLUSH_SECONDS": "0.02",
        "RIPOSTE_INSTANCE_HEARTBEAT_SECONDS": "1", "RIPOSTE_INSTANCE_STALE_SECONDS": "3"}


def answer(marker: str) -> str:
    return f"the answer for {marker}"


def _reply_for(body: dict[str, Any]) -> Reply:
    marker = _marker(body)
    if marker.startswith("hang-"):  # runs until cancelled
        return slow_reply(answer(marker), delay_s=0.5, pieces=240)
    if marker.startswith("slow-"):
        return slow_reply(answer(marker), delay_s=0.1, pieces=60)
    return slow_reply(answer(marker), delay_s=0.02, pieces=10)


def _marker(body: dict[str, Any]) -> str:
    found = re.search(r"(slow-|hang-)?job-\d+", orjson.dumps(body["messages"]).decode())
    assert found is not None, body
    return found.group(0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        fake.responder = _reply_for
        yield fake


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_postgres_database("riposte_replicas") as url:
        yield url


def start_replica(data_dir: Path, name: str, upstream: ScriptedUpstream, database_url: str,
                  workers: int = 8, processes: int = 1, log_level: str = "warning") -> ServerProcess:
    config = data_dir / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "providers": [{"name": "fake", "base_url": upstream.base_url, "api_key": f"key-{name}"}],
        "log_level": log_level, "background_workers": workers}))
    return ServerProcess("--config", str(config), "--database-url", database_url, "--workers", str(processes),
                         env=FAST, data_dir=data_dir).start()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, upstream: ScriptedUpstream,
             database_url: str) -> Iterator[dict[str, ServerProcess]]:
    data_dir = tmp_path_factory.mktemp("replicas")
    started: dict[str, ServerProcess] = {}
    try:
        for name, workers in (("A", 8), ("B", 8), ("C", 8), ("F", 0)):
            started[name] = start_replica(data_dir, name, upstream, database_url, workers)
        yield started
    finally:
        for server in started.values():
            server.stop()


def create(server: ServerProcess, marker: str, **extra: Any) -> dict[str, Any]:
    reply = httpx.post(f"{server.base_url}/responses", timeout=30,
                       json={"model": "fake/m", "input": marker, "background": True, **extra})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def status(server: ServerProcess, response_id: str) -> str:
    reply = httpx.get(f"{server.base_url}/responses/{response_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["status"])


def wait_for(server: ServerProcess, response_id: str, wanted: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (current := status(server, response_id)) not in wanted:
        assert time.monotonic() < deadline, f"{response_id} stayed {current}"
        time.sleep(0.05)
    return current


def replay(server: ServerProcess, response_id: str, after: int | None = None,
           stop_after: int | None = None) -> list[dict[str, Any]]:
    """The response's stream from `server` (GET ?stream=true), optionally dropped after `stop_after` events."""
    params: dict[str, Any] = {"stream": "true"}
    if after is not None:
        params["starting_after"] = after
    events: list[dict[str, Any]] = []
    with httpx.Client(timeout=60) as http, http.stream("GET", f"{server.base_url}/responses/{response_id}",
                                                       params=params) as reply:
        assert reply.status_code == 200, reply.read()
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                events.append(orjson.loads(line[6:]))
                if stop_after is not None and len(events) >= stop_after:
                    break
    return events


def test_stream_dropped_on_one_replica_resumes_on_another(replicas: dict[str, ServerProcess]) -> None:
    front, b, c = replicas["F"], replicas["B"], replicas["C"]
    events: list[dict[str, Any]] = []
    body = {"model": "fake/m", "input": "slow-job-0", "background": True, "stream": True}
    with httpx.Client(timeout=60) as http, http.stream("POST", f"{front.base_url}/responses", json=body) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                events.append(orjson.loads(line[6:]))
                if len(events) >= 8:
                    break  # the client drops mid-answer
    assert events[-1]["type"] == "response.output_text.delta"
    response_id = events[0]["response"]["id"]
    rest = replay(b, response_id, after=events[-1]["sequence_number"])
    assert rest[-1]["type"] == "response.completed"
    whole = events + rest
    assert [e["sequence_number"] for e in whole] == list(range(len(whole))), "every event once, in order"
    assert replay(c, response_id) == whole
    assert "".join(e["delta"] for e in whole if e["type"] == "response.output_text.delta") == answer("slow-job-0")


def test_cancel_queued_and_running_from_another_replica(replicas: dict[str, ServerProcess],
                                                        upstream: ScriptedUpstream) -> None:
    front = replicas["F"]
    busy = [create(front, f"hang-job-{n}")["id"] for n in range(1, 25)]  # as many as A, B and C run at once
    for response_id in busy:
        wait_for(front, response_id, {"in_progress"})  # every worker slot is taken
    running = busy[0]
    queued = create(front, "hang-job-99")["id"]
    cancelled = httpx.post(f"{front.base_url}/responses/{queued}/cancel", json={}, timeout=60)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["output"] == []
    disconnects = upstream.disconnects
    stopped = httpx.post(f"{front.base_url}/responses/{running}/cancel", json={}, timeout=60)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while upstream.disconnects == disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.disconnects > disconnects, "the owning replica must stop the upstream call"
    for response_id in busy:  # clean up for the next test
        httpx.post(f"{front.base_url}/responses/{response_id}/cancel", json={}, timeout=60)
    assert not any(_marker(call.body) == "hang-job-99" for call in upstream.call_log)


@pytest.mark.timeout(300)
def test_replica_killed_halfway(replicas: dict[str, ServerProcess], upstream: ScriptedUpstream,
                                database_url: str) -> None:
    a, b, c = replicas["A"], replicas["B"], replicas["C"]
    markers = [f"job-{n}" for n in range(1, JOBS + 1)]
    entry = [a, b, c]
    with ThreadPoolExecutor(8) as pool:
        ids = dict(zip(markers, pool.map(lambda n: create(entry[n % 3], markers[n])["id"], range(JOBS)),
                       strict=True))
    deadline = time.monotonic() + 120
    while sum(1 for call in upstream.call_log if call.outcome == "completed"
              and _marker(call.body).startswith("job-")) < JOBS // 2:
        assert time.monotonic() < deadline, "half the jobs never completed"
        time.sleep(0.02)
    a.kill()
    try:
        with ThreadPoolExecutor(8) as pool:
            final = dict(zip(markers, pool.map(lambda m: wait_for(b, ids[m], TERMINAL, 120), markers), strict=True))
    except AssertionError:
        _print_unfinished_jobs(database_url)
        print("B:", "\n".join(b.lines()[-60:]), "\nC:", "\n".join(c.lines()[-60:]))
        raise
    not_completed = {m: httpx.get(f"{b.base_url}/responses/{ids[m]}", timeout=30).json()["error"]
                     for m, state in final.items() if state != "completed"}
    if not_completed:
        for name in ("B", "C"):
            print(name, "\n".join(replicas[name].lines())[-8000:])
    assert not not_completed, not_completed
    survivors = Counter(_marker(call.body) for call in upstream.call_log
                        if call.outcome == "completed" and call.authorization != "Bearer key-A")
    assert max(survivors[m] for m in markers) <= 1, "a response ran to completion twice"
    with ThreadPoolExecutor(8) as pool:
        streams = dict(zip(markers, pool.map(lambda m: replay(c, ids[m]), markers), strict=True))
    for marker, events in streams.items():
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        ends = [e for e in events if e["type"] in TERMINAL_EVENTS]
        assert ends == [events[-1]], f"{marker}: exactly one terminal event, the last"
        assert ends[0]["response"]["output"][0]["content"][0]["text"] == answer(marker)
    retried = [m for m, events in streams.items() if sum(e["type"] == "response.created" for e in events) > 1]
    print(f"{len(retried)} response(s) were retried after the kill")


def _print_unfinished_jobs(database_url: str) -> None:
    """On a failure: the job rows still open, to see who holds what."""

    async def dump() -> None:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            for row in await connection.fetch("SELECT response_id, state, owner, lease_until, fence, attempts, "
                                              "cancel_requested, last_sequence FROM background_jobs "
                                              "WHERE state != 'done'"):
                print(dict(row))
        finally:
            await connection.close()

    asyncio.run(dump())
