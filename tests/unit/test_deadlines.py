"""The body watchdog: one timer per stream enforcing the first-byte, idle and total deadlines."""

from __future__ import annotations

import asyncio

import pytest

from riposte.errors import UpstreamError
from riposte.inference.deadlines import NOT_WAITING, BodyWatchdog, Deadlines, UpstreamTimeoutError
from riposte.inference.sse_decoder import MAX_LINE_BYTES, SseDataDecoder


class Reader:
    def __init__(self) -> None:
        self.error: BaseException | None = None

    def set_exception(self, exc: BaseException) -> None:
        self.error = exc


def _deadlines(**overrides: float) -> Deadlines:
    values = {"connect": 1.0, "first_byte": 0.1, "idle": 0.1, "total": 1.0, **overrides}
    return Deadlines(**values)


async def _watch(deadlines: Deadlines, script: list[tuple[float, str]]) -> str | None:
    """Play `script` (sleep, then "byte", "busy" or "wait") and return the message that fired."""
    loop = asyncio.get_running_loop()
    reader = Reader()
    watchdog = BodyWatchdog(loop, reader, deadlines, loop.time())
    first = True
    for pause, action in script:
        await asyncio.sleep(pause)
        if reader.error is not None:
            break
        if action == "byte" and first:
            watchdog.first_byte_arrived()
            first = False
        watchdog.waiting_since = NOT_WAITING if action == "busy" else loop.time()
    watchdog.cancel()
    assert reader.error is None or isinstance(reader.error, UpstreamTimeoutError)
    return str(reader.error) if reader.error else None


def test_no_first_byte_fires_the_first_byte_deadline() -> None:
    fired = asyncio.run(_watch(_deadlines(), [(0.3, "wait")]))
    assert fired is not None and "first-byte deadline of 0.1 s" in fired


def test_silence_after_the_first_byte_fires_the_idle_deadline() -> None:
    fired = asyncio.run(_watch(_deadlines(first_byte=5), [(0.02, "byte"), (0.3, "wait")]))
    assert fired is not None and "idle deadline of 0.1 s" in fired


def test_steady_reads_fire_nothing_until_the_total_deadline() -> None:
    script = [(0.03, "byte")] * 40  # 1.2 s of reads, never idle
    fired = asyncio.run(_watch(_deadlines(total=0.5), script))
    assert fired is not None and "total deadline of 0.5 s" in fired


def test_time_spent_handing_chunks_downstream_is_not_upstream_silence() -> None:
    fired = asyncio.run(_watch(_deadlines(), [(0.02, "byte"), (0.0, "busy"), (0.3, "byte"), (0.02, "byte")]))
    assert fired is None


def test_a_line_without_end_cannot_grow_without_bound() -> None:
    decoder = SseDataDecoder()
    decoder.feed(b"data: " + b"x" * (MAX_LINE_BYTES - 10))
    with pytest.raises(UpstreamError, match="longer than"):
        decoder.feed(b"x" * 20)
