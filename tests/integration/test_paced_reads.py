"""Reading a paced upstream stream: tokens that arrive within the read window share one pass
through the server, the first token is never held, and an upstream slower than the window is
read as it comes; held streams wake together, on one clock (inference/chat_stream.py)."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

import pytest
from aiohttp.client_proto import ResponseHandler

from riposte.config import ProviderConfig
from riposte.inference.chat_stream import ChatStreamClient, PacedTicks, paced_faster_than
from riposte.inference.deadlines import Deadlines
from tests.fakes.scripted_upstream import ScriptedUpstream, slow_reply

# Chunks that reach the reader closer together than this came out of one read.
SAME_READ_S = 0.004


async def _arrivals(upstream: ScriptedUpstream, window_s: float) -> tuple[list[float], float]:
    """When each content chunk reached the reader, from the request; and the first content's time."""
    provider = ProviderConfig(name="scripted", base_url=upstream.base_url, api_key="test")
    client = ChatStreamClient(provider.base_url, "test", Deadlines.of(provider), 4.0, window_s)
    loop = asyncio.get_running_loop()
    started = loop.time()
    times: list[float] = []
    try:
        async for batch in client.stream({"model": "m", "messages": [], "stream": True}):
            for chunk in batch:
                if any(choice["delta"].get("content") for choice in chunk.get("choices", [])):
                    times.append(loop.time() - started)
    finally:
        await client.aclose()
    return times, times[0]


def _reads(times: list[float]) -> int:
    return 1 + sum(1 for before, after in pairwise(times) if after - before > SAME_READ_S)


async def test_tokens_paced_faster_than_the_window_share_reads(upstream: ScriptedUpstream) -> None:
    # 16 tokens 20 ms apart and a window far longer: the first token goes at once, the rest of the
    # stream arrives while the next read waits, and leaves in a read or two. The bounds are loose
    # (a held first token would come after the whole window) so a loaded machine cannot flake it.
    window_s = 0.6
    upstream.enqueue(slow_reply("abcdefghijklmnop", delay_s=0.02, pieces=16))
    times, first = await _arrivals(upstream, window_s)
    assert len(times) == 16
    assert _reads(times) <= 8, f"tokens were read one by one: {times}"
    assert first < window_s, "the first token waited for the window"


async def test_a_held_stream_leaves_its_socket_unread_until_the_tick(upstream: ScriptedUpstream,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # 16 tokens 20 ms apart under a 600 ms window: the tokens that arrive while the stream is held
    # stay in the kernel's buffer and come in one socket read at the tick, not one read each.
    socket_reads = 0
    data_received = ResponseHandler.data_received

    def counting(handler: ResponseHandler, data: bytes) -> None:
        nonlocal socket_reads
        socket_reads += bool(data)  # aiohttp also calls it with b"" to resume its parser
        data_received(handler, data)

    monkeypatch.setattr(ResponseHandler, "data_received", counting)
    upstream.enqueue(slow_reply("abcdefghijklmnop", delay_s=0.02, pieces=16))
    times, _ = await _arrivals(upstream, 0.6)
    assert len(times) == 16
    # The response head and first token, then the rest in a read or two (one per tick).
    assert socket_reads <= 6, f"{socket_reads} socket reads for 16 paced tokens"


async def test_an_upstream_slower_than_the_window_is_read_as_it_comes(upstream: ScriptedUpstream) -> None:
    upstream.enqueue(slow_reply("abcd", delay_s=0.2, pieces=4))  # 4 tokens, 200 ms apart
    times, _ = await _arrivals(upstream, 0.1)
    assert _reads(times) == 4, f"tokens were held together: {times}"


def test_only_tokens_paced_between_a_millisecond_and_the_window_hold_the_next_read() -> None:
    window = 0.02
    assert paced_faster_than(window, 0.005, 1)  # a model at 5 ms a token
    assert paced_faster_than(window, 0.02, 4)  # the same, four tokens after a held read
    assert not paced_faster_than(window, 0.2, 1)  # slower than the window: holding batches nothing
    assert not paced_faster_than(window, 0.0015, 255)  # a fast upstream read in two pieces
    assert not paced_faster_than(window, 0.005, 0)  # a read that completed no chunk


async def test_held_streams_wake_together_at_the_next_tick_not_each_a_window_after_itself() -> None:
    # Two streams held 100 ms apart within one 300 ms tick: both go on at that tick, the later one
    # well before a window of its own would have ended. The margins are 100 ms wide.
    window = 0.3
    ticks = PacedTicks(window)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(window - loop.time() % window + 0.005)  # just after a tick
    tick = (loop.time() // window + 1) * window

    async def held(delay: float) -> tuple[float, float]:
        await asyncio.sleep(delay)
        started = loop.time()
        await ticks.next_tick()
        return started, loop.time()

    (first_start, first_woke), (second_start, second_woke) = await asyncio.gather(held(0.0), held(0.1))
    assert first_start < second_start < tick <= first_woke
    assert tick <= second_woke < second_start + window - 0.05
    assert second_woke - first_woke < 0.05


async def test_a_stream_cancelled_while_held_does_not_disturb_the_others() -> None:
    ticks = PacedTicks(0.05)
    cancelled = asyncio.create_task(ticks.next_tick())
    kept = asyncio.create_task(ticks.next_tick())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.wait_for(kept, 2)
    assert cancelled.cancelled()
    await asyncio.wait_for(ticks.next_tick(), 2)  # and the clock goes on ticking


class _LateClock:
    """Fires a `PacedTicks`' ticks by hand, each `late` seconds after its time, on a clock that
    only moves forwards; the loop's thread is on the CPU `busy` of that time (see `cpu`)."""

    def __init__(self, ticks: PacedTicks, busy: float = 0.0) -> None:
        self.ticks, self.now, self.busy, self.cpu_time = ticks, 100.0, busy, 0.0

    def cpu(self) -> float:
        return self.cpu_time

    def fire(self, lateness_s: list[float]) -> None:
        for late in lateness_s:
            tick = self.now + self.ticks.window
            self.cpu_time += (tick + late - self.now) * self.busy
            self.ticks._adapt(tick + late, tick)
            self.now = tick + late


def _ticks_on_a_cpu_clock(window: float, max_window: float) -> tuple[PacedTicks, _LateClock]:
    holder: list[_LateClock] = []
    ticks = PacedTicks(window, max_window, cpu_clock=lambda: holder[0].cpu())
    holder.append(_LateClock(ticks))
    return ticks, holder[0]


def test_a_loop_busy_in_short_passes_widens_the_window_though_its_ticks_keep_time() -> None:
    ticks, clock = _ticks_on_a_cpu_clock(0.02, 0.08)
    clock.busy = 0.5  # CPU to spare: stays as it is
    clock.fire([0.001] * 50)
    assert ticks.window == 0.02
    clock.busy = 0.97  # on time within a millisecond, but the loop's thread never rests
    clock.fire([0.001] * 30)
    assert ticks.window == 0.08
    clock.busy = 0.75  # wider, it keeps up with room to spare: neither wider nor narrower
    clock.fire([0.0] * 100)
    assert ticks.window == 0.08
    clock.busy = 0.3  # the load is gone: back to the narrowest window
    clock.fire([0.0] * 200)
    assert ticks.window == 0.02


def test_the_window_widens_while_the_ticks_come_late_and_narrows_once_they_keep_time() -> None:
    changes: list[float] = []
    ticks = PacedTicks(0.02, 0.08, on_change=changes.append)
    clock = _LateClock(ticks)
    assert changes == [0.02]
    clock.fire([0.01] * 10)  # every tick 10 ms late: the loop has fallen behind
    assert ticks.window == 0.04
    clock.fire([0.03] * 10)  # still behind at 40 ms
    assert ticks.window == 0.08
    clock.fire([0.05] * 20)  # and no wider than the maximum
    assert ticks.window == 0.08
    clock.fire([0.0] * 10)  # on time again, but not yet for a second
    assert ticks.window == 0.08
    clock.fire([0.0] * 80)  # on time for long: halved after a calm second, then again
    assert ticks.window == 0.02
    assert changes == [0.02, 0.04, 0.08, 0.04, 0.02]


def test_one_busy_pass_of_the_loop_does_not_widen_the_window() -> None:
    # The upstream's burst of tokens for every stream makes a tick late now and then: that is one
    # busy pass, not a loop that cannot keep up.
    ticks = PacedTicks(0.02, 0.08)
    clock = _LateClock(ticks)
    clock.fire([0.0, 0.0, 0.006, 0.0, 0.0, 0.007, 0.0, 0.0] * 10)
    assert ticks.window == 0.02
    clock.fire([0.0, 0.015, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # one pass of 15 ms
    assert ticks.window == 0.02


def test_without_a_wider_maximum_the_window_never_widens() -> None:
    ticks = PacedTicks(0.02)
    _LateClock(ticks).fire([0.05] * 20)
    assert ticks.window == 0.02


async def _widest_window_while_hogged(ticks: PacedTicks, pass_s: float, until: float, max_ticks: int) -> float:
    """The window of `ticks` once it reaches `until` (or after `max_ticks` ticks) while a task takes
    the event loop for `pass_s` at a time, yielding in between."""
    busy = True

    async def hog() -> None:
        while busy:
            deadline = time.perf_counter() + pass_s
            while time.perf_counter() < deadline:
                pass
            await asyncio.sleep(0)

    hogging = asyncio.create_task(hog())
    try:
        for _ in range(max_ticks):
            await ticks.next_tick()
            if ticks.window >= until:
                break
    finally:
        busy = False
        await hogging
    return ticks.window


async def test_an_event_loop_that_falls_behind_widens_the_window_of_held_streams() -> None:
    # A task that takes the loop for 30 ms at a time (a process out of CPU) makes every 20 ms tick
    # late: the streams held on the clock are then released at a wider interval.
    assert await _widest_window_while_hogged(PacedTicks(0.02, 0.08), 0.03, until=0.08, max_ticks=30) == 0.08


async def test_an_event_loop_kept_busy_in_short_passes_widens_the_window() -> None:
    # A task that takes the loop for 1 ms at a time: every tick fires within about a millisecond,
    # but the loop's thread is never idle, so it has no CPU for more tokens.
    assert await _widest_window_while_hogged(PacedTicks(0.02, 0.08), 0.001, until=0.04, max_ticks=100) > 0.02


async def test_when_the_window_is_wider_than_its_grid_streams_keep_to_their_own_ticks() -> None:
    # A 200 ms window on a 50 ms grid: two streams whose last reads were 100 ms apart wake 100 ms
    # apart, each within its own window (one tick for both would make every pass wake them all).
    ticks = PacedTicks(0.05, 0.2)
    ticks._set_window(0.2)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.05 - loop.time() % 0.05 + 0.005)  # just after a grid point
    ticks._loop = loop  # as if the clock already ran on this loop: keep the window

    async def held(delay: float) -> tuple[float, float]:
        await asyncio.sleep(delay)
        last_read = loop.time()
        await ticks.next_tick(last_read)
        return last_read, loop.time()

    (first_read, first_woke), (second_read, second_woke) = await asyncio.gather(held(0.0), held(0.1))
    assert second_woke - first_woke > 0.05
    for last_read, woke in ((first_read, first_woke), (second_read, second_woke)):
        assert last_read + 0.2 - 0.05 <= woke < last_read + 0.2 + 0.04
