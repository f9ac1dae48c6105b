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
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler


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
