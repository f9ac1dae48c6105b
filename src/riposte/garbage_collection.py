"""How CPython's garbage collector runs in a serving process.

By default a young collection starts whenever 700 more container objects (dicts, lists, frames,
coroutines...) have been made than freed. A request keeps some 300-600 of them alive for its whole
life (the middleware's coroutines, the turn, its generators, the stream's state), so with streams
open nearly every young collection finds live objects and promotes them, and full collections then
walk every open stream's objects again, several times a second. Measured with `python -m bench.pairs`
(bench/RESULTS.md, "Issue 16, eleventh pass"): 1.8 us of CPU per token at 64 streams x 0 ms and
5.3 us at 256 streams x 5 ms went to the collector, with pauses of 12-35 ms.

Yet almost nothing a request makes is cyclic garbage (about one object per request; the rest is
freed by reference counting), so while serving the young threshold sits far above any live set
of streams, and a sweep every `SWEEP_SECONDS` collects the young generation instead, every fifth
time the middle one and every thirtieth the old one. What a sweep walks is what was made since the
last one and is still alive, a few milliseconds. The sweep bounds how long cyclic garbage waits:
errors make it (an upstream that refuses connections leaves a cycle in asyncio's and aiohttp's
frames per request, holding the request body sent), and with a sweep every 10 s an outage at 220
requests a second of 100 KB inputs grew the worker to 800 MB in 30 s; every second it stays near
what the default collector keeps (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import AsyncIterator

YOUNG_THRESHOLD = 200_000
SWEEP_SECONDS = 1.0
_MIDDLE_EVERY = 5
_OLD_EVERY = 30


def freeze_startup_heap() -> None:
    """Move every object alive now (imported modules, the app, a loaded model) out of the garbage
    collector's reach. They live as long as the process, yet each full collection walked all of
    them (200k objects, 140 ms on the benchmark machine; millions with the embedding model) while
    streams waited: freezing them cut CPU per token by about 8% and the p90 time to first token by
    half at 64 paced streams (bench/RESULTS.md). Objects made later are collected as before."""
    gc.freeze()


class _Serving:
    """The thresholds to restore once the last serving app in the process stops (tests run several
    apps at once, each on its own thread, starting and stopping in any order)."""

    lock = threading.Lock()
    apps = 0
    thresholds_before: tuple[int, int, int] = gc.get_threshold()


@contextlib.asynccontextmanager
async def collecting_while_serving(young_threshold: int = YOUNG_THRESHOLD,
                                   sweep_seconds: float = SWEEP_SECONDS) -> AsyncIterator[None]:
    """The serving policy (module docstring) for as long as the block runs."""
    with _Serving.lock:
        if _Serving.apps == 0:
            _Serving.thresholds_before = gc.get_threshold()
        _Serving.apps += 1
        gc.set_threshold(young_threshold, *_Serving.thresholds_before[1:])
    sweeper = asyncio.create_task(sweep_garbage(sweep_seconds))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        with _Serving.lock:
            _Serving.apps -= 1
            if _Serving.apps == 0:
                gc.set_threshold(*_Serving.thresholds_before)


async def sweep_garbage(every: float) -> None:
    sweeps = 0
    while True:
        await asyncio.sleep(every)
        sweeps += 1
        gc.collect(sweep_generation(sweeps))


def sweep_generation(sweeps: int) -> int:
    """Which generation the `sweeps`-th sweep collects (with the younger ones)."""
    if sweeps % _OLD_EVERY == 0:
        return 2
    return 1 if sweeps % _MIDDLE_EVERY == 0 else 0
