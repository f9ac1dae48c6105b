"""The benchmark's staggered start: connections begin one by one over the ramp, and only what
arrives after it counts, against the bench's own fake upstream (a real server process)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from bench import servers
from bench.bodies import Api
from bench.loadgen import Mode, Scenario, Target, run_cell

from riposte.testing.server import free_port

RAMP_S = 0.4
CONCURRENCY = 4


@pytest.fixture(scope="module")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.ManagedProcess]:
    process = servers.start_fake_upstream(free_port(), Path(tmp_path_factory.mktemp("fake")))
    yield process
    process.stop()


def test_connections_start_one_by_one_and_the_window_opens_after_the_ramp(
        fake_upstream: servers.ManagedProcess) -> None:
    target = Target("direct", "direct", "127.0.0.1", fake_upstream.port, Api.CHAT)
    # A response (64 x 5 ms) outlasts the stagger (100 ms), so the earliest starts are each
    # connection's first request.
    scenario = Scenario(Mode.STREAM, CONCURRENCY, delay_ms=5, tokens=64)
    run = asyncio.run(run_cell(target, scenario, seconds=0.3, ramp_s=RAMP_S))

    firsts = sorted(s.started for s in run.samples)[:CONCURRENCY]
    gaps = [later - earlier for earlier, later in pairwise(firsts)]
    assert len(firsts) == CONCURRENCY
    assert all(gap >= RAMP_S / CONCURRENCY * 0.8 for gap in gaps)
    assert any(s.during_ramp for s in run.samples)
    assert any(not s.during_ramp for s in run.samples)
    assert all(s.ok for s in run.samples)
    # Deltas that arrived before the window opened are delivered but not counted in its rate.
    assert 0 < sum(s.deltas_in_window for s in run.samples) < sum(s.deltas for s in run.samples)
    assert run.ramp_s == RAMP_S

