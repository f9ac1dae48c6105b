"""Reading a paced upstream stream: tokens that arrive within the read window share one pass
through the server, the first token is never held, and an upstream slower than the window is
read as it comes; held streams wake together, on one clock (inference/chat_stream.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from itertools import pairwise

import pytest
from aiohttp.client_proto import ResponseHandler

from riposte.config import ProviderConfig
from riposte.errors import UpstreamError
from riposte.inference import chat_stream
from riposte.inference.chat_stream import ChatStreamClient, PacedTicks, paced_faster_than
from riposte.inference.deadlines import Deadlines
from tests.fakes.scripted_upstream import ScriptedUpstream, dropped_reply, slow_reply

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


async def _batches(upstream: ScriptedUpstream, window_s: float) -> list[tuple[float, int]]:
    """Each batch the stream yielded: when (from the request) and how many content chunks it held."""
    provider = ProviderConfig(name="scripted", base_url=upstream.base_url, api_key="test")
    client = ChatStreamClient(provider.base_url, "test", Deadlines.of(provider), 4.0, window_s)
    loop = asyncio.get_running_loop()
    started = loop.time()
    batches: list[tuple[float, int]] = []
    try:
        async for batch in client.stream({"model": "m", "messages": [], "stream": True}):
            batches.append((loop.time() - started, sum(1 for chunk in batch if _content(chunk))))
    finally:
        await client.aclose()
    return batches


def _content(chunk: dict[str, object]) -> str:
    choices = chunk.get("choices")
    return "".join(choice["delta"].get("content") or "" for choice in choices) if isinstance(choices, list) else ""


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


async def _late_reads(upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch,
                      window: float) -> tuple[list[float], float]:
    """120 tokens 10 ms apart under `window`: when the stream's socket was read once it had
    settled, and the span of those reads."""
    read_times: list[float] = []
    loop = asyncio.get_running_loop()
    data_received = ResponseHandler.data_received

    def timed(handler: ResponseHandler, data: bytes) -> None:
        if data:
            read_times.append(loop.time())
        data_received(handler, data)

    monkeypatch.setattr(ResponseHandler, "data_received", timed)
    upstream.enqueue(slow_reply("x" * 120, delay_s=0.01, pieces=120))
    started = loop.time()
    batches = await _batches(upstream, window)
    assert sum(count for _, count in batches) == 120
    settled = 0.45  # the quarter second, the young stream's growing batches, and a margin
    late_reads = [at for at in read_times if at - started > settled]
    assert len(late_reads) >= 4, f"the stream was not paced: {len(late_reads)} reads after {settled} s"
    return late_reads, late_reads[-1] - late_reads[0]


async def test_a_settled_stream_of_a_busy_loop_is_read_at_every_other_tick(upstream: ScriptedUpstream,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # After its first quarter second the stream's socket is read once per two ticks (a tick at
    # every read: about 15 reads in the last 0.75 s). The loop is taken for busy however idle it is.
    monkeypatch.setattr(chat_stream, "_THRIFTY_BELOW", -1.0)
    window = 0.05
    late_reads, span = await _late_reads(upstream, monkeypatch, window)
    # A margin of two reads: the scripted upstream shares the test's event loop, and when a tick's
    # work delays its timers it sends a few tokens at once, which the stream rightly reads at once.
    assert len(late_reads) <= span / (2 * window) + 3, f"{len(late_reads)} reads in {span:.2f} s"


async def test_a_settled_stream_of_a_loop_with_cpu_to_spare_is_read_at_every_tick(
        upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same stream on the test's idle loop: no tick is skipped, so the end of the answer is not
    # seen a window late (about 15 reads in the last 0.75 s; every other tick would be at most 10).
    window = 0.05
    late_reads, span = await _late_reads(upstream, monkeypatch, window)
    assert len(late_reads) > span / (2 * window) + 3, f"{len(late_reads)} reads in {span:.2f} s"


async def test_a_thrifty_stream_whose_end_came_early_is_read_at_the_tick_it_skips(
        upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    # Six streams, settled and read at every other tick, whose ends fall at different points of the
    # two-tick cycle: an end that arrives in the first window is read at the skipped tick (a gap of
    # one window before the last batch), where without the peek every last gap is two windows.
    monkeypatch.setattr(chat_stream, "_THRIFTY_BELOW", -1.0)
    window = 0.1
    for extra in range(6):
        upstream.enqueue(slow_reply("x" * (100 + 4 * extra), delay_s=0.01, pieces=100 + 4 * extra))
    streams = await asyncio.gather(*(_batches(upstream, window) for _ in range(6)))
    last_gaps = [batches[-1][0] - batches[-2][0] for batches in streams]
    assert min(last_gaps) < 1.5 * window, f"every end waited for the tick after next: {last_gaps}"


async def test_tokens_before_a_pause_go_on_before_it_ends(upstream: ScriptedUpstream) -> None:
    # Tokens 10 ms apart with a 400 ms stop after runs of different lengths, so that some runs end
    # on a skipped tick: every token before a stop reaches the reader long before the stop ends.
    pauses = ((40, 0.4), (47, 0.4), (59, 0.4), (68, 0.4), (83, 0.4), (90, 0.4))
    reply = dataclasses.replace(slow_reply("x" * 100, delay_s=0.01, pieces=100), pauses=pauses)
    upstream.enqueue(reply)
    batches = await _batches(upstream, 0.05)
    arrivals = [at for at, count in batches for _ in range(count)]
    assert len(arrivals) == 100
    for position, _ in pauses:
        # Chunk positions count the role chunk first; content token i is chunk i + 1.
        before, after = arrivals[position - 2], arrivals[position - 1]
        assert after - before > 0.25, f"the token before the stop at {position} waited for the stop to end"


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
@pytest.mark.parametrize("after_chunks", [52, 53, 54, 55])
async def test_chunks_read_before_the_connection_drops_still_come_before_the_error(
        upstream: ScriptedUpstream, after_chunks: int, reset: bool) -> None:
    reply = dataclasses.replace(dropped_reply("x" * 80, after_chunks), delay_s=0.01, reset=reset)
    upstream.enqueue(dataclasses.replace(reply, deltas=tuple({"content": "x"} for _ in range(80))))
    provider = ProviderConfig(name="scripted", base_url=upstream.base_url, api_key="test")
    # A window longer than the fake's 50 ms between its last chunk and its reset: the connection
    # fails while the stream waits for a tick.
    client = ChatStreamClient(provider.base_url, "test", Deadlines.of(provider), 4.0, 0.12)
    received = 0
    try:
        with pytest.raises(UpstreamError):
            async for batch in client.stream({"model": "m", "messages": [], "stream": True}):
                received += sum(1 for chunk in batch if _content(chunk))
    finally:
        await client.aclose()
    assert received == after_chunks


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


def test_settled_streams_skip_ticks_only_while_the_loop_is_busy() -> None:
    ticks, clock = _ticks_on_a_cpu_clock(0.02, 0.08)
    assert ticks.thrifty  # not measured yet: as if busy
    clock.busy = 0.05  # a few streams
    clock.fire([0.0] * 20)
    assert not ticks.thrifty
    clock.busy = 0.11  # between the two marks: as it was
    clock.fire([0.0] * 20)
    assert not ticks.thrifty
    clock.busy = 0.2
    clock.fire([0.0] * 20)
    assert ticks.thrifty
    clock.busy = 0.11
    clock.fire([0.0] * 20)
    assert ticks.thrifty


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
