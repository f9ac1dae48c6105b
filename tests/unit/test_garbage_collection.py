"""The serving process's garbage-collection policy: rare young collections, and a sweep that
still collects cyclic garbage within a bounded time."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import Counter
from pathlib import Path

from riposte.config import ProviderConfig, Settings
from riposte.garbage_collection import YOUNG_THRESHOLD, collecting_while_serving, sweep_generation
from riposte.testing.server import RunningServer


class _Node:
    def __init__(self) -> None:
        self.partner: _Node | None = None


def _a_garbage_cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.partner, second.partner = second, first
    return weakref.ref(first)


async def test_while_serving_the_young_threshold_is_high_and_a_sweep_collects_cycles() -> None:
    before = gc.get_threshold()
    async with collecting_while_serving(sweep_seconds=0.02):
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        cycle = _a_garbage_cycle()
        assert cycle() is not None  # a handful of allocations: far from an automatic collection
        for _ in range(50):
            await asyncio.sleep(0.01)
            if cycle() is None:
                break
        assert cycle() is None
    assert gc.get_threshold() == before


async def test_overlapping_servers_restore_the_thresholds_when_the_last_one_stops() -> None:
    before = gc.get_threshold()
    first = collecting_while_serving()
    second = collecting_while_serving()
    await first.__aenter__()
    await second.__aenter__()
    await first.__aexit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    await second.__aexit__(None, None, None)
    assert gc.get_threshold() == before


def test_every_fifth_sweep_takes_the_middle_generation_and_every_thirtieth_the_old_one() -> None:
    assert Counter(sweep_generation(sweep) for sweep in range(1, 31)) == {0: 24, 1: 5, 2: 1}


def test_a_running_server_collects_by_the_serving_policy(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, providers=[ProviderConfig(name="x", base_url="http://127.0.0.1:9/v1")])
    with RunningServer(settings):
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
