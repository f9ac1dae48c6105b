"""Reading a paced upstream stream: tokens that arrive within the read window share one pass
through the server, the first token is never held, and an upstream slower than the window is
read as it comes (inference/chat_stream.py)."""

from __future__ import annotations

import asyncio
from itertools import pairwise

from riposte.config import ProviderConfig
from riposte.inference.chat_stream import ChatStreamClient, paced_faster_than
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
        async for chunk in client.stream({"model": "m", "messages": [], "stream": True}):
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
