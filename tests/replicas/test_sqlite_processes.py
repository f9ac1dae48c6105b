"""Several processes on one SQLite file (one host), and SIGTERM handing background work back.

Process X runs a slow background response and gets SIGTERM: it exits cleanly and the response goes
back to the queue. Process Y (two uvicorn workers on the same file) then runs it to the end; the
stored stream holds X's partial attempt and Y's whole one, numbered in one sequence, with one
terminal event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.scripted_upstream import ScriptedUpstream
from tests.integration.server_process import ServerProcess
from tests.replicas.test_replicas import (
    TERMINAL,
    TERMINAL_EVENTS,
    _reply_for,
    answer,
    create,
    replay,
    start_replica,
    status,
    wait_for,
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        fake.responder = _reply_for
        yield fake


@pytest.mark.timeout(300)
def test_sigterm_hands_back_and_another_process_finishes(tmp_path: Path, upstream: ScriptedUpstream) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'riposte.db'}"
    x = start_replica(tmp_path, "X", upstream, url, workers=2, log_level="info")
    y: ServerProcess | None = None
    try:
        assert httpx.get(f"{x.root_url}/ready", timeout=10).json() == {"status": "ready"}
        response_id = create(x, "slow-job-1")["id"]
        wait_for(x, response_id, {"in_progress"})
        # uvicorn ends a graceful shutdown by re-raising the signal it caught.
        assert x.terminate() in (0, -15)
        assert any("handed 1 background response(s) back to the queue" in line for line in x.lines()), x.lines()
        # The stopped turn's refused end is logged as what it is, not as a deleted response.
        assert any("is no longer this process's (handed back" in line for line in x.lines()), x.lines()
        assert not any("was deleted while it ran" in line for line in x.lines()), x.lines()
        assert upstream.disconnects >= 1, "the stopped process ended its upstream call"
        y = start_replica(tmp_path, "Y", upstream, url, workers=2, processes=2)
        assert y is not None
        assert wait_for(y, response_id, TERMINAL) == "completed"
        events = replay(y, response_id)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert [e for e in events if e["type"] in TERMINAL_EVENTS] == [events[-1]]
        assert sum(e["type"] == "response.created" for e in events) == 2, "X's attempt, then Y's"
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == answer("slow-job-1")
        # Several workers on one SQLite file: background responses and resume from any of them.
        others = [create(y, f"job-{n}")["id"] for n in range(5)]
        for n, other in enumerate(others):
            assert wait_for(y, other, TERMINAL) == "completed"
            resumed = replay(y, other, after=2)
            assert resumed[0]["sequence_number"] == 3
            assert resumed[-1]["response"]["output"][0]["content"][0]["text"] == answer(f"job-{n}")
        assert status(y, response_id) == "completed"
    finally:
        x.stop()
        if y is not None:
            y.stop()
