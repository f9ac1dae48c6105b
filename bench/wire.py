"""The little HTTP/1.1 and SSE the benchmark needs, as pure incremental parsers.

Both ends of the benchmark parse as little as they can: the load generator counts marker bytes
in the stream instead of decoding every event, so that its own cost stays small next to the
server's.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True)
class RequestHead:
    method: str
    path: str


@dataclass(frozen=True)
class ResponseHead:
    status: int
    content_length: int | None
    chunked: bool
    keep_alive: bool


def take_request(buffer: bytearray) -> tuple[RequestHead, bytes] | None:
    """Remove one complete request (Content-Length bodies only) from `buffer`; None if incomplete."""
    end = buffer.find(HEADER_END)
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    method, path, _version = lines[0].decode("latin-1").split(" ", 2)
    length = int(_headers(lines[1:]).get("content-length", "0"))
    start = end + len(HEADER_END)
    if len(buffer) < start + length:
        return None
    body = bytes(buffer[start:start + length])
    del buffer[:start + length]
    return RequestHead(method, path), body


def parse_response_head(head: bytes) -> ResponseHead:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = _headers(lines[1:])
    length = headers.get("content-length")
    return ResponseHead(
        status=status,
        content_length=int(length) if length is not None else None,
        chunked="chunked" in headers.get("transfer-encoding", ""),
        keep_alive=headers.get("connection", "keep-alive").lower() != "close",
    )


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


class ChunkedDecoder:
    """Incremental `Transfer-Encoding: chunked` decoding: feed raw bytes, get payload bytes back."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0  # payload bytes still due in the current chunk
        self._skip = 0  # the CRLF after a chunk's payload
        self._in_trailer = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out = bytearray()
        pos = 0
        while not self.done and pos < len(buffer):
            if self._remaining:
                take = min(self._remaining, len(buffer) - pos)
                out += buffer[pos:pos + take]
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._skip = 2
            elif self._skip:
                take = min(self._skip, len(buffer) - pos)
                pos += take
                self._skip -= take
            else:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                self._line(bytes(buffer[pos:end]))
                pos = end + 2
        del buffer[:pos]
        return bytes(out)

    def _line(self, line: bytes) -> None:
        if self._in_trailer:
            self.done = not line
            return
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            self._in_trailer = True
        self._remaining = size


class MarkerCounter:
    """Counts occurrences of a byte marker in a stream fed in arbitrary pieces.

    Only the bytes after the last match that could still start one are carried over, so a
    marker split across two reads is counted once and an overlap is never counted twice.
    """

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._tail = b""
        self.count = 0

    def feed(self, data: bytes) -> int:
        window = self._tail + data if self._tail else data
        found = window.count(self._marker)
        keep_from = len(window) - (len(self._marker) - 1)
        if found:
            keep_from = max(keep_from, window.rfind(self._marker) + len(self._marker))
        self._tail = window[max(keep_from, 0):]
        self.count += found
        return found
