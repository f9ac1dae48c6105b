"""aiohttp connections for streams of many small HTTP chunks: an SSE answer sends each token as one.

aiohttp 3.14's `StreamReader` hands out its buffer one HTTP chunk at a time, and after taking
each it asks the connection's protocol to resume reading, whether or not anything paused it.
That resume is not free: it feeds the HTTP parser an empty read (how the parser picks up where a
pause stopped it) and resumes the transport. For a file download, with few and large chunks, it
is nothing; for a streamed answer it is paid once per token, about 1.3 us of this machine's CPU
(bench/RESULTS.md, "Issue 16, thirteenth pass"). The protocol here does that work only when
reading was in fact paused: by aiohttp's flow control (`_reading_paused`, which also holds while
the parser has unparsed data of its own) or for a buffer it cannot drain yet (`_buffer_paused`).
Everything else is aiohttp's, and `tests/unit/test_sse_connections.py` checks that the flags
this relies on keep their meaning in the pinned version.

The body's reader has the same trouble on the other side: aiohttp's `StreamReader` keeps each
HTTP chunk apart and records where each ended (for `readchunk`), and its `readany` takes the
chunks out one Python call at a time. A streamed answer is read with `readany` only, so
`read_sse_body` makes its reader a `SseBodyReader`: chunk ends are not recorded, and a read takes
everything buffered in one join.
"""

from __future__ import annotations

import asyncio
import socket
from functools import partial
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader


class SseResponseHandler(ResponseHandler):
    """aiohttp's client protocol, resuming only what was paused."""

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused or self._buffer_paused:
            super().resume_reading(resume_parser)


class SseConnector(aiohttp.TCPConnector):
    """aiohttp's TCP pool, its connections speaking `SseResponseHandler`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The connector's protocol factory has no public setting; it is one attribute, set in
        # the base class's constructor and used for every connection it opens.
        self._factory = partial(_sse_response_handler, loop=self._loop)


def _sse_response_handler(loop: asyncio.AbstractEventLoop) -> ResponseHandler:
    return SseResponseHandler(loop=loop)


class SseBodyReader(StreamReader):
    """aiohttp's body reader, reading everything buffered at once and keeping no HTTP chunk ends.
    `readchunk` would see the whole buffer as one chunk; nothing here calls it."""

    __slots__ = ()  # the same layout as aiohttp's, so a reader can become one (`read_sse_body`)

    def begin_http_chunk_receiving(self) -> None:
        pass

    def end_http_chunk_receiving(self) -> None:
        # aiohttp's also wakes a reader waiting in `readchunk`; `feed_data` woke any other.
        pass

    def _read_nowait(self, n: int) -> bytes:
        if n != -1 or self._buffer_offset:
            return super()._read_nowait(n)
        self._timer.assert_timeout()
        buffer = self._buffer
        if not buffer:
            return b""
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        size = len(data)
        self._size -= size
        self._cursor += size
        if self._http_chunk_splits:  # recorded before the reader became this class
            self._http_chunk_splits.clear()
        if self._size < self._low_water:
            # After the buffer was taken: resuming may feed it again, for the next read.
            self._protocol.resume_reading()
        return data


def read_sse_body(response: aiohttp.ClientResponse) -> StreamReader:
    """The response's body reader, made a `SseBodyReader`. The reader is built by aiohttp's C
    parser, which names aiohttp's own class and offers no other, so the one already built changes
    class: its state is the same (the same slots), and the parser finds the methods by name on
    each chunk. A reader of another class (a test's, a future aiohttp's) is left as it is."""
    content = response.content
    if type(content) is StreamReader:
        content.__class__ = SseBodyReader
    return content


# The OpenAI-compatible end of a streamed answer, as every such server sends it.
_DONE = b"data: [DONE]"
# How much of a socket's unread bytes a peek looks at: a held stream's few windows of tokens.
_PEEK_BYTES = 65536


def peekable_fd(transport: asyncio.BaseTransport | None) -> int | None:
    """The connection's socket, when the bytes it has not read yet can be looked at as the upstream
    wrote them: a plain TCP connection, not TLS."""
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else None


def end_is_buffered(fd: int) -> bool:
    """Whether the socket's unread bytes hold the end of the answer, or the upstream closed the
    connection: peeked at, not taken (the stream's own read takes them). The socket object only
    lends the transport's file descriptor, and gives it back."""
    sock = socket.socket(fileno=fd)
    try:
        data = sock.recv(_PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True  # a broken connection: the stream's read reports it
    finally:
        sock.detach()
    return not data or _DONE in data
