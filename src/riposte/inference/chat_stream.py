"""Streamed chat completions over aiohttp: the one upstream call that sits on every token's path.

The openai SDK builds each request through its typed-parameter machinery and reads a stream
through a pure-Python HTTP parser and a line iterator several generators deep; measured on the
benchmark machine that cost 20-30 us of CPU per streamed chunk. aiohttp parses HTTP in C and
hands over whole socket reads, which `SseDataDecoder` splits into chunks: about 3 us. The
non-streaming calls, off the hot path, stay on the SDK.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from yarl import URL

from riposte.errors import RateLimitError, UpstreamError
from riposte.inference.deadlines import NOT_WAITING, BodyWatchdog, Deadlines, deadline_error
from riposte.inference.sse_connections import end_is_buffered, peekable_fd, read_sse_body
from riposte.inference.sse_decoder import SseDataDecoder
from riposte.inference.stale_connections import aiohttp_pools, open_with_one_retry
from riposte.inference.upstream import JSON, ChunkBatch
from riposte.observability.metrics import PACED_READ_WINDOW
from riposte.observability.request_record import note_upstream_status

# A client mistake the backend caught is still the client's mistake; anything else is ours.
_CLIENT_STATUSES = frozenset({400, 404, 413, 422, 429})
# The error type OpenAI gives such a status (429: a request rate; the rest: the request itself).
_CLIENT_ERROR_TYPES = {429: RateLimitError.error_type}
_SSE = "text/event-stream"
# How much of a body that is not SSE is quoted in the error.
_QUOTED_BYTES = 300
# A stream's first chunks are passed on in batches of at most 4, then 8, 16, 32 and 64 chunks (one
# size per batch), whatever the reads bring: the first token of an answer that came all at once
# must not wait for the rest of it to pass through the turn (a burst of 256 chunks took about a
# millisecond there). Later reads go on whole.
_FIRST_BATCH_CHUNKS = 4
_WHOLE_FROM = 128
# Tokens further apart than this are paced by the upstream (a real model: 5-50 ms each); closer,
# the upstream is fast and every read carries many of them already.
_PACED_GAP = 0.001
# A paced stream this long under way is read at every other tick while the event loop's thread is
# busy (`PacedTicks.thrifty`): one wake-up, socket read, trip through the turn and write to the
# client per two windows, for tokens that then reach the client up to a window later, and an end or a
# pause in the answer seen up to a window later (bench/RESULTS.md, "Issue 16, twelfth pass" and
# "thirteenth pass"). A stream's first tokens, the ones a user waits for, go tick by tick.
_SETTLED_AFTER = 0.25
# `PacedTicks`: the event loop has fallen behind when its ticks come this late on average (a share
# of the window), and has caught up when they come within this share of the narrowest window, for
# `_CALM_SECONDS`. Between the two the window stays as it is, so it does not swing back and forth.
_BEHIND_SHARE = 0.25
_CALM_SHARE = 0.1
_CALM_SECONDS = 1.0
# The weight of each tick's lateness in the running average.
_LATENESS_SMOOTHING = 0.2
# `PacedTicks`: the event loop's thread is also behind when it was on the CPU for more than this
# share of the time, measured over spans of `_BUSY_SPAN` seconds; and has room again below
# `_IDLE_SHARE`. A loop that is busy in short passes fires its ticks on time although it cannot
# take more tokens (at 256 paced streams without stored rows, ticks 2-4 ms late and the window
# stayed narrow while 40% of the tokens fell behind; bench/RESULTS.md).
_BUSY_SHARE = 0.9
_IDLE_SHARE = 0.6
_BUSY_SPAN = 0.25
# `PacedTicks.thrifty`: settled streams skip every other tick once the loop's thread is on the CPU
# for more than this share of the time, and read at every tick again below `_THRIFTY_BELOW`. Reading
# every tick sees the end of each answer up to a window sooner (and delivered 1.9% more tokens a
# second at 64 x 5 ms in interleaved pairs, the first token 2.9 -> 1.5 ms), but costs about a third
# more CPU per token (full `python -m bench` runs: 28-29 against 21-23 us at 64 x 5 ms). So only a
# loop with little to do pays that: on the benchmark's host, 16 streams of 5 ms read at every tick
# kept its thread 4-12% busy, 64 streams read thriftily 16-23% (30-38% at every tick), 256 streams
# 60-90% (bench/RESULTS.md, "Issue 16, twentieth pass").
_THRIFTY_ABOVE = 0.14
_THRIFTY_BELOW = 0.09


class ChatStreamClient:
    """One connection pool per upstream, opened on first use inside the serving event loop."""

    def __init__(self, base_url: str, api_key: str, deadlines: Deadlines, keepalive_seconds: float,
                 paced_read_window: float = 0.0, paced_read_window_max: float | None = None) -> None:
        # Parsed once: aiohttp would parse a string URL again on every request.
        self._url = URL(base_url.rstrip("/") + "/chat/completions")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                         "Accept": _SSE}
        self._deadlines = deadlines
        self._keepalive_seconds = keepalive_seconds
        self._ticks: PacedTicks | None = None
        if paced_read_window:
            gauge = PACED_READ_WINDOW.labels(f"{self._url.scheme}://{self._url.raw_authority}")
            self._ticks = PacedTicks(paced_read_window, paced_read_window_max, on_change=gauge.set)
        # aiohttp enforces only the connect deadline; the others are `BodyWatchdog`'s, because
        # aiohttp's per-read timeout schedules a timer on every socket read.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=deadlines.connect, sock_read=None)
        # The proxy the environment names for this URL, as the SDK's client would use; read once,
        # because aiohttp's trust_env would also re-read ~/.netrc on every request.
        self._proxy = environment_proxy(str(self._url))
        self._pools: tuple[aiohttp.ClientSession, aiohttp.ClientSession] | None = None

    async def stream(self, body: JSON) -> AsyncGenerator[ChunkBatch]:
        """The body's chunks as they arrive, a batch per socket read. When the upstream paces its
        tokens, the connection is not read again until the next tick of a clock that ticks every
        `paced_read_window` for all of this upstream's streams: tokens that arrive meanwhile wait in
        the kernel's socket buffer and then take one socket read, one trip through the turn and one
        write to the client together, instead of each paying its own wake-up, read, generator steps
        and socket write, and the held streams wake in one pass of the event loop
        (bench/RESULTS.md). Once the stream has settled (`_SETTLED_AFTER`), it is read at every other
        tick. A token waits at most the window (wider while the server falls behind, see
        `PacedTicks`), a settled stream's token at most two; the first token, and one that comes
        after a pause longer than that, never wait; an upstream pacing slower than the window is
        read at once."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await self._open(orjson.dumps(body), started)
        content = read_sse_body(response)
        watchdog = BodyWatchdog(loop, content, self._deadlines, started)
        complete = False
        ticks = self._ticks
        # Paused between ticks (a paused transport leaves the socket unread; resuming reads all of
        # it at once). The buffer aiohttp keeps is empty by then: `readany` took all of it.
        transport = response.connection.transport if response.connection is not None else None
        resume = partial(_resume, transport) if transport is not None else None  # one per stream, not per read
        # A thrifty read skips a tick; at that tick a peek at the socket resumes it early when the
        # answer's end is already there, so the end is not seen a window late.
        fd = peekable_fd(transport)
        resume_at_end = partial(_resume_at_end, transport, fd) if transport is not None and fd is not None else None
        try:
            decoder = SseDataDecoder()
            data = await content.readany()
            watchdog.first_byte_arrived()
            read_at = previous_read_at = first_read_at = loop.time()
            limit = _FIRST_BATCH_CHUNKS
            while data:
                watchdog.waiting_since = NOT_WAITING
                payloads = decoder.feed(data)
                batch, malformed = parse_chunks(payloads)
                paced = (ticks is not None and transport is not None and not decoder.done and malformed is None
                         and paced_faster_than(ticks.window, read_at - previous_read_at, len(payloads)))
                if limit < _WHOLE_FROM:
                    pieces, limit = young_batches(batch, limit)
                    for piece in pieces:
                        yield piece
                elif batch:
                    yield batch
                if malformed is not None:
                    raise malformed
                watchdog.waiting_since = read_at
                if not paced:
                    data = await content.readany()
                else:
                    assert ticks is not None and transport is not None and resume is not None  # `paced` checked
                    transport.pause_reading()
                    # A settled stream of a busy loop skips a tick: its socket is read at the tick after next.
                    settled = ticks.thrifty and read_at - first_read_at >= _SETTLED_AFTER
                    if settled and resume_at_end is not None:
                        ticks.call_at_tick(read_at, resume_at_end)
                    window_starts = read_at + ticks.window if settled else read_at
                    ticks.call_at_tick(window_starts, resume)
                    data = await content.readany()
                previous_read_at, read_at = read_at, loop.time()
            batch, malformed = parse_chunks(decoder.close())
            if batch:
                yield batch
            if malformed is not None:
                raise malformed
            complete = True
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream connection failed: {exc or type(exc).__name__}") from exc
        finally:
            watchdog.cancel()
            if complete:
                response.release()
            else:
                response.close()  # never hand a half-read connection back to the pool

    async def _open(self, data: bytes, started: float) -> aiohttp.ClientResponse:
        """Send the request and check the response head, within the connect, first-byte and total
        deadlines; a stale pooled connection is retried once on a fresh one."""
        if self._pools is None:
            self._pools = aiohttp_pools(self._keepalive_seconds, self._timeout)
        pooled, fresh = self._pools
        deadline_at, deadline_name = self._deadlines.before_first_byte(started)
        try:
            async with asyncio.timeout_at(deadline_at):
                return await open_with_one_retry(str(self._url), lambda pool: self._post(pool, data), pooled, fresh)
        except aiohttp.ConnectionTimeoutError as exc:
            raise deadline_error("connect", self._deadlines.connect) from exc
        except TimeoutError as exc:
            seconds = self._deadlines.first_byte if deadline_name == "first-byte" else self._deadlines.total
            raise deadline_error(deadline_name, seconds) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream connection failed: {exc or type(exc).__name__}") from exc

    async def _post(self, pool: aiohttp.ClientSession, data: bytes) -> aiohttp.ClientResponse:
        response = await pool.post(self._url, data=data, headers=self._headers, proxy=self._proxy)
        note_upstream_status(response.status)
        try:
            if response.status >= 400:
                raise status_error(response.status, await response.read())
            # The raw header, not aiohttp's parsed `content_type`, which parses it on every response.
            content_type = response.headers.get("Content-Type")
            if content_type is not None and not content_type.lower().startswith(_SSE):
                raise UpstreamError(
                    f"upstream answered a streaming request with content type "
                    f"{content_type.split(';')[0].strip()!r}, not {_SSE!r}: {await _quote(response)}")
        except BaseException:
            response.close()
            raise
        return response

    async def aclose(self) -> None:
        if self._pools is not None:
            for pool in self._pools:
                await pool.close()


class PacedTicks:
    """One clock for all the paced streams of an upstream, ticking every `window`, a window that
    widens while the event loop falls behind.

    A held stream reads again at the next tick rather than a window after its own last read: the
    held streams wake together, in one pass of the event loop, instead of each on a timer of its
    own at its own moment (bench/RESULTS.md).

    When the ticks fire late, on average by more than a quarter of the window, or the loop's
    thread is on the CPU nearly all the time (`_BUSY_SHARE`), the process has more tokens to pass
    on than it has CPU for, and each token already waits in the loop's queue about as long as a
    wider window would hold it: the window doubles, up to `max_window`, so that each pass through
    a stream carries more tokens and costs less CPU per token. Once the ticks have kept time, with
    CPU to spare, for `_CALM_SECONDS`, it halves again, down to `window`. A server with CPU to
    spare never widens it, so there a token waits at most `window`; an overloaded one,
    `max_window`. The same measure makes the ticks `thrifty` (settled streams read at every other
    tick) while the loop's thread is busier than `_THRIFTY_ABOVE`, until it falls below
    `_THRIFTY_BELOW`; they start thrifty, until the first span is measured. `cpu_clock` is the loop
    thread's CPU time (replaceable in tests)."""

    def __init__(self, window: float, max_window: float | None = None, *,
                 on_change: Callable[[float], None] | None = None,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self.base_window = window
        self.max_window = max(window, max_window or window)
        self._on_change = on_change
        self._set_window(window)
        self.lateness = 0.0  # how late the ticks fire, on average
        self._calm_since: float | None = None
        self._cpu_clock = cpu_clock
        # The loop thread's share of time on the CPU over the last whole span (None: not measured
        # yet at this width), and where the current span began (loop time, CPU time).
        self.busy: float | None = None
        self._span: tuple[float, float] | None = None
        self.thrifty = True
        self._waiters: dict[float, list[Callable[[], None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def next_tick(self, last_read: float | None = None) -> None:
        """Wait for the tick that ends the window begun by `last_read` (see `call_at_tick`)."""
        waiter = asyncio.get_running_loop().create_future()
        self.call_at_tick(last_read, partial(_wake, waiter))
        await waiter

    def call_at_tick(self, last_read: float | None, callback: Callable[[], None]) -> None:
        """Call `callback` at the tick that ends the window begun by `last_read` (the stream's last
        read; None: now). Ticks fall on a grid of the narrowest window, so when the window is wider
        the streams, which started at different moments, keep to different ticks of it: each tick
        wakes a share of them, and no single pass of the loop holds up a new request for long."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests start several): the old one's ticks are gone
            self._loop, self._waiters = loop, {}
            self._set_window(self.base_window)
            self.lateness, self._calm_since, self.busy, self._span = 0.0, None, None, None
            self.thrifty = True
        now, grid = loop.time(), self.base_window
        since = now if last_read is None else last_read
        tick = max((since + self.window) // grid * grid, (now // grid + 1) * grid)
        waiters = self._waiters.get(tick)
        if waiters is None:
            waiters = self._waiters[tick] = []
            loop.call_at(tick, self._release, tick)
        waiters.append(callback)

    def _release(self, tick: float) -> None:
        assert self._loop is not None
        self._adapt(self._loop.time(), tick)
        for callback in self._waiters.pop(tick, ()):
            callback()

    def _adapt(self, now: float, tick: float) -> None:
        # Smoothed: a single late tick is one busy pass of the loop (the upstream's burst of tokens
        # for every stream), not a loop that cannot keep up.
        self.lateness += (max(now - tick, 0.0) - self.lateness) * _LATENESS_SMOOTHING
        self._measure_busy(now)
        behind = self.lateness > self.window * _BEHIND_SHARE or (self.busy or 0.0) > _BUSY_SHARE
        if behind and self.window < self.max_window:
            self._set_window(min(self.window * 2, self.max_window))
            # Measured afresh at the new width, so that one backlog does not double it twice.
            self.lateness, self._calm_since, self.busy, self._span = 0.0, None, None, None
        elif (self.window > self.base_window and self.lateness < self.base_window * _CALM_SHARE
              and (self.busy or 0.0) < _IDLE_SHARE):
            if self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= _CALM_SECONDS:
                self._set_window(max(self.window / 2, self.base_window))
                self._calm_since = now
        else:
            self._calm_since = None

    def _measure_busy(self, now: float) -> None:
        cpu = self._cpu_clock()
        if self._span is None:
            self._span = (now, cpu)
        elif now - self._span[0] >= _BUSY_SPAN:
            busy = self.busy = (cpu - self._span[1]) / (now - self._span[0])
            self._span = (now, cpu)
            if busy > _THRIFTY_ABOVE:
                self.thrifty = True
            elif busy < _THRIFTY_BELOW:
                self.thrifty = False

    def _set_window(self, window: float) -> None:
        self.window = window
        if self._on_change is not None:
            self._on_change(window)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a stream cancelled while held
        waiter.set_result(None)


def _resume(transport: asyncio.Transport) -> None:
    if not transport.is_closing():  # a stream that ended while held (cancelled) closed it
        transport.resume_reading()


def _resume_at_end(transport: asyncio.Transport, fd: int) -> None:
    # A closed transport's descriptor may already belong to another socket: not peeked at.
    if not transport.is_closing() and end_is_buffered(fd):
        transport.resume_reading()


def paced_faster_than(window: float, since_last_read: float, payloads: int) -> bool:
    """Whether the upstream paces its tokens (a millisecond or more apart: not a fast upstream
    whose tokens the reader merely fell behind on) at more than one per window, so that holding
    the next read batches some."""
    return payloads > 0 and _PACED_GAP <= since_last_read / payloads < window


async def _quote(response: aiohttp.ClientResponse) -> str:
    head = await response.content.read(_QUOTED_BYTES)
    return head.decode(errors="replace").strip() or "(empty body)"


def environment_proxy(url: str) -> str | None:
    host = urlsplit(url).hostname
    if host is None or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(urlsplit(url).scheme)


def young_batches(batch: ChunkBatch, limit: int) -> tuple[list[ChunkBatch], int]:
    """`batch` cut into pieces of at most `limit`, `limit` doubling after each piece, up to
    `_WHOLE_FROM` (the first pieces of a young stream are small, see `_FIRST_BATCH_CHUNKS`); and
    the limit for the next piece."""
    pieces: list[ChunkBatch] = []
    while len(batch) > limit and limit < _WHOLE_FROM:
        pieces.append(batch[:limit])
        batch = batch[limit:]
        limit *= 2
    if batch:
        pieces.append(batch)
        limit *= 2
    return pieces, limit


def parse_chunks(payloads: list[bytes]) -> tuple[ChunkBatch, UpstreamError | None]:
    """The chunks up to the first that is malformed or an error, and that one's error: the good
    ones before it still belong to the answer."""
    batch: ChunkBatch = []
    try:
        for payload in payloads:
            batch.append(parse_chunk(payload))
    except UpstreamError as exc:
        return batch, exc
    return batch, None


def parse_chunk(payload: bytes | str) -> JSON:
    try:
        chunk: JSON = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"upstream sent a malformed chunk ({exc}): {_quoted(payload)}") from exc
    if chunk.__class__ is not dict:
        raise UpstreamError(f"upstream sent a chunk that is not a JSON object: {_quoted(payload)}")
    if "error" in chunk and "choices" not in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        raise UpstreamError(f"upstream stream error: {error.get('message', error)}", code=error.get("code"))
    return chunk


def _quoted(payload: bytes | str) -> str:
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
    return text[:200]


def status_error(status: int, body: bytes | str | Any) -> UpstreamError:
    """An upstream error status, with the upstream's own message when its body has one. A status
    that is the client's mistake keeps it, typed as OpenAI types that status (backends name their
    types as they like: vLLM's is `BadRequestError`), with the upstream's code when it gives one
    (e.g. `context_length_exceeded`); its `param` is left out, since it names a field of the chat
    request, not of the client's."""
    message, error = _error_details(body)
    message = f"upstream returned {status}: {message}"
    if status == 401:
        # The usual first-run mistake: the server was started without the provider's key.
        message += " (check the provider's API key: OPENAI_API_KEY, or its api_key / api_key_env setting)"
    if status not in _CLIENT_STATUSES:
        return UpstreamError(message, status_code=502)
    code = error.get("code")
    error_type = _CLIENT_ERROR_TYPES.get(status, "invalid_request_error")
    return UpstreamError(message, status_code=status, error_type=error_type,
                         code=code if isinstance(code, str) and code else None)


def _error_details(body: bytes | str | Any) -> tuple[str, dict[str, Any]]:
    """The upstream's error message, and its error object ({} when it sent none)."""
    parsed = body
    if isinstance(body, bytes | str):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body.decode(errors="replace") if isinstance(body, bytes) else body
            return text.strip()[:500] or "(empty body)", {}
    # An OpenAI error envelope, or (from the SDK) the error object already taken out of it.
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"]), error
    return orjson.dumps(parsed, default=str).decode()[:500], {}
