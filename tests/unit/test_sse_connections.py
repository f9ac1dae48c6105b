"""The SSE connections' protocol: no resume work per HTTP chunk, and aiohttp's flow control intact."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp.streams import StreamReader

from riposte.inference.chat_stream import ChatStreamClient
from riposte.inference.deadlines import Deadlines
from riposte.inference.sse_connections import (
    SseBodyReader,
    SseConnector,
    SseResponseHandler,
    end_is_buffered,
    read_sse_body,
)


def _chunked(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@asynccontextmanager
async def _server(body: bytes, headers: bytes = b"") -> AsyncIterator[str]:
    """A server answering any request with `body`, already chunked, in one write."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                     + headers + b"\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def _read(url: str, *, slowly: bool = False, sse_body: bool = False) -> tuple[bytes, int]:
    """The whole body through `readany`, and how many times the parser was fed an empty read."""
    feeds = empty_feeds = 0
    original = SseResponseHandler.data_received
    # Inherited from aiohttp's handler: put back by deleting, or a later test that patches aiohttp's
    # own `data_received` would find this class shadowing it.
    inherited = "data_received" not in SseResponseHandler.__dict__

    def counting(self: SseResponseHandler, data: bytes) -> None:
        nonlocal feeds, empty_feeds
        feeds += 1
        empty_feeds += not data
        original(self, data)

    SseResponseHandler.data_received = counting  # type: ignore[method-assign]
    try:
        async with aiohttp.ClientSession(connector=SseConnector()) as session, session.get(url) as response:
            content = read_sse_body(response) if sse_body else response.content
            received = bytearray()
            while data := await content.readany():
                received += data
                if slowly:
                    await asyncio.sleep(0.001)
    finally:
        if inherited:
            del SseResponseHandler.data_received
        else:
            SseResponseHandler.data_received = original  # type: ignore[method-assign]
    assert feeds > 0, "the connector did not use SseResponseHandler"
    return bytes(received), empty_feeds


async def test_a_burst_of_small_chunks_is_read_without_a_resume_per_chunk() -> None:
    events = [b"data: {\"n\": %d}\n\n" % n for n in range(500)]
    async with _server(_chunked(events)) as url:
        received, empty_feeds = await _read(url)
    assert received == b"".join(events)
    # aiohttp's own protocol feeds the parser an empty read after each chunk taken: ~500 here.
    assert empty_feeds < 5


@pytest.mark.parametrize("sse_body", [False, True], ids=["aiohttp_reader", "sse_body_reader"])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_body_past_the_flow_control_limits_read_slowly_arrives_whole(encoding: str, sse_body: bool) -> None:
    # 3 MB in 1 KB chunks: past aiohttp's high-water marks in bytes and in chunks, so reading
    # pauses and must be resumed for the body to finish (`SseBodyReader` keeps only the bytes mark).
    pieces = [bytes([65 + n % 26]) * 1024 for n in range(3000)]
    plain = b"".join(pieces)
    if encoding == "gzip":
        compressed = gzip.compress(plain)
        pieces = [compressed[i:i + 1024] for i in range(0, len(compressed), 1024)]
    async with _server(_chunked(pieces), b"Content-Encoding: %s\r\n" % encoding.encode()) as url:
        received, _ = await asyncio.wait_for(_read(url, slowly=True, sse_body=sse_body), 60)
    assert received == plain


async def test_an_sse_body_is_read_whole_without_a_call_per_http_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [b"data: {\"n\": %d}\n\n" % n for n in range(500)]
    chunk_takes = _count_chunk_takes(monkeypatch)
    async with _server(_chunked(events)) as url:
        received, _ = await _read(url, sse_body=True)
    assert received == b"".join(events)
    # aiohttp's reader takes each of the 500 HTTP chunks out with a call of its own.
    assert chunk_takes() == 0


async def test_read_sse_body_makes_the_reader_an_sse_body_reader_and_keeps_its_state() -> None:
    async with (_server(_chunked([b"data: 1\n\n", b"data: 2\n\n"])) as url,
                aiohttp.ClientSession(connector=SseConnector()) as session, session.get(url) as response):
        before = {name: getattr(response.content, name) for name in StreamReader.__slots__}
        content = read_sse_body(response)
        assert type(content) is SseBodyReader and content is response.content
        assert {name: getattr(content, name) for name in StreamReader.__slots__} == before
        assert await content.read() == b"data: 1\n\ndata: 2\n\n"


async def test_the_upstream_client_reads_its_streams_through_an_sse_body_reader(
        monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [b'data: {"choices": [{"index": 0, "delta": {"content": "t%d"}}]}\n\n' % n for n in range(300)]
    chunk_takes = _count_chunk_takes(monkeypatch)
    async with _server(_chunked([*chunks, b"data: [DONE]\n\n"])) as url:  # it answers any path
        client = ChatStreamClient(url, "test", Deadlines(connect=5, first_byte=5, idle=5, total=30), 4.0)
        try:
            received = [chunk async for batch in client.stream({"model": "m", "stream": True}) for chunk in batch]
        finally:
            await client.aclose()
    assert [chunk["choices"][0]["delta"]["content"] for chunk in received] == [f"t{n}" for n in range(300)]
    assert chunk_takes() == 0  # aiohttp's own reader: one take per HTTP chunk


def _count_chunk_takes(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many times aiohttp's reader takes one HTTP chunk out of its buffer, from now on."""
    takes = 0
    original = StreamReader._read_nowait_chunk

    def counting(self: StreamReader, n: int) -> bytes:
        nonlocal takes
        takes += 1
        return original(self, n)

    monkeypatch.setattr(StreamReader, "_read_nowait_chunk", counting)
    return lambda: takes


def test_a_peek_finds_the_answers_end_without_taking_the_bytes() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        reader.setblocking(False)
        assert not end_is_buffered(reader.fileno())  # nothing yet
        writer.sendall(b'data: {"choices": []}\n\n')
        assert not end_is_buffered(reader.fileno())  # tokens, not the end
        writer.sendall(b"data: [DONE]\n\n")
        assert end_is_buffered(reader.fileno())
        # Only looked at: the stream's own read still gets every byte, and the socket is still open.
        assert reader.recv(1024) == b'data: {"choices": []}\n\ndata: [DONE]\n\n'
        writer.close()
        assert end_is_buffered(reader.fileno())  # the upstream closed: reading it ends the stream
