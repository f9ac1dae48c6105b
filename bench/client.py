"""A minimal keep-alive HTTP/1.1 client on a bare asyncio protocol, for the load generator.

Each connection runs one request at a time. While a body streams in, the protocol only counts
marker bytes and notes the time of the first text delta; it never decodes an event.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.wire import HEADER_END, ChunkedDecoder, MarkerCounter, ResponseHead, parse_response_head


@dataclass(frozen=True)
class Markers:
    """The bytes that identify a text delta and the successful end of a stream."""

    delta: bytes
    terminal: bytes


@dataclass(frozen=True)
class Window:
    """The span of a cell whose deltas count towards its rate."""

    start: float = float("-inf")
    end: float = float("inf")

    def holds(self, moment: float) -> bool:
        return self.start <= moment <= self.end


EVERYTHING = Window()


@dataclass
class Exchange:
    """One request and what came back."""

    started: float
    status: int = 0
    first_delta_at: float | None = None
    finished: float | None = None
    deltas: int = 0
    deltas_in_window: int = 0
    terminal_seen: bool = False
    body: bytearray = field(default_factory=bytearray)
    error: str | None = None


class _Reader:
    """Parses one response for one exchange; data arrives through `feed`."""

    def __init__(self, exchange: Exchange, markers: Markers | None, keep_body: bool, window: Window) -> None:
        self.exchange = exchange
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head: ResponseHead | None = None
        self._head_buffer = bytearray()
        self._decoder = ChunkedDecoder()
        self._deltas = MarkerCounter(markers.delta) if markers else None
        self._terminal = MarkerCounter(markers.terminal) if markers else None
        self._keep_body = keep_body or markers is None
        self._window = window

    def feed(self, data: bytes, now: float) -> None:
        if self.head is None:
            self._head_buffer += data
            end = self._head_buffer.find(HEADER_END)
            if end < 0:
                return
            self.head = parse_response_head(bytes(self._head_buffer[:end]))
            self.exchange.status = self.head.status
            data = bytes(self._head_buffer[end + len(HEADER_END):])
        if self.head.chunked:
            self._payload(self._decoder.feed(data), now)
            if self._decoder.done:
                self._finish(now)
        else:
            self._payload(data, now)
            if self.head.content_length is not None and len(self.exchange.body) >= self.head.content_length:
                self._finish(now)

    def _payload(self, payload: bytes, now: float) -> None:
        if not payload:
            return
        exchange = self.exchange
        if self._keep_body or not self.head or not self.head.chunked:
            exchange.body += payload
        if self._deltas is None or self._terminal is None:
            return
        found = self._deltas.feed(payload)
        if found:
            if exchange.first_delta_at is None:
                exchange.first_delta_at = now
            exchange.deltas += found
            if self._window.holds(now):
                exchange.deltas_in_window += found
        if not exchange.terminal_seen and self._terminal.feed(payload):
            exchange.terminal_seen = True

    def _finish(self, now: float) -> None:
        self.exchange.finished = now
        if not self.done.done():
            self.done.set_result(None)

    def fail(self, reason: str) -> None:
        if self.exchange.error is None and self.exchange.finished is None:
            self.exchange.error = reason
        if not self.done.done():
            self.done.set_result(None)


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._reader: _Reader | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._reader is not None:
            self._reader.feed(data, time.perf_counter())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._reader is not None:
            self._reader.fail(f"connection lost: {exc or 'closed by server'}")

    async def send(self, raw: bytes, markers: Markers | None, *, keep_body: bool = False,
                   window: Window = EVERYTHING, timeout: float = 120.0) -> Exchange:
        assert self._transport is not None
        exchange = Exchange(started=time.perf_counter())
        reader = self._reader = _Reader(exchange, markers, keep_body, window)
        self._transport.write(raw)
        try:
            await asyncio.wait_for(asyncio.shield(reader.done), timeout)
        except TimeoutError:
            reader.fail(f"timeout after {timeout:.0f} s")
            self.close()
        self._reader = None
        if reader.head is not None and not reader.head.keep_alive:
            self.close()
        return exchange

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


def http_request(method: str, host: str, port: int, path: str, body: bytes = b"", *, stream: bool = False) -> bytes:
    accept = b"text/event-stream" if stream else b"application/json"
    head = (b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer bench\r\nAccept: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (method.encode(), path.encode(), host.encode(), port, accept, len(body)))
    return head + body
