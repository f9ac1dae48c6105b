"""Incremental decoding of a chat-completions SSE body into the payloads of its `data:` lines.

Pure. Bytes arrive in whatever pieces the socket gives; every complete `data:` line becomes one
payload, exactly as the line-by-line reading it replaces did, without a Python-level hop per line
through an HTTP library's line iterator.
"""

from __future__ import annotations

from riposte.errors import UpstreamError

DONE = b"[DONE]"
# No real chunk comes near this; an upstream sending bytes without a newline must not grow memory.
MAX_LINE_BYTES = 32 * 1024 * 1024


class SseDataDecoder:
    def __init__(self) -> None:
        self._partial = b""
        # The last complete line was `data: [DONE]`: the upstream has said everything.
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        """Payloads of the `data:` lines completed by `data`; `[DONE]` and empty data are dropped."""
        lines = (self._partial + data).split(b"\n") if self._partial else data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            raise UpstreamError(f"upstream sent a line longer than {MAX_LINE_BYTES} bytes")
        for line in reversed(lines):  # the last line that is not blank: one or two steps
            if line.strip():
                self.done = line.startswith(b"data:") and line[5:].strip() == DONE
                break
        return _payloads(lines)

    def close(self) -> list[bytes]:
        """The last line, for a body that does not end in a newline."""
        last, self._partial = self._partial, b""
        return _payloads([last])


def _payloads(lines: list[bytes]) -> list[bytes]:
    """The payloads of the `data:` lines, sliced and stripped in one pass without a call per line
    (the blank line after each event is half of them); the rare `[DONE]` and empty payloads are
    taken out after."""
    payloads = [line[5:].strip() for line in lines if line[:5] == b"data:"]
    if DONE in payloads or b"" in payloads:
        payloads = [payload for payload in payloads if payload and payload != DONE]
    return payloads
