"""Server-sent events: one write per event, `event:` line plus a one-line JSON `data:`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson
from starlette.responses import StreamingResponse

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode_event(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _typed_events(events: AsyncGenerator[dict[str, Any]]) -> AsyncGenerator[bytes]:
    async with aclosing(events) as stream:
        async for event in stream:
            yield encode_event(event)
    yield DONE


async def _data_only(payloads: AsyncGenerator[dict[str, Any]]) -> AsyncGenerator[bytes]:
    async with aclosing(payloads) as stream:
        async for payload in stream:
            yield encode_data(payload)
    yield DONE


def event_stream_response(events: AsyncGenerator[dict[str, Any]]) -> StreamingResponse:
    return StreamingResponse(_typed_events(events), media_type="text/event-stream", headers=SSE_HEADERS)


def data_stream_response(payloads: AsyncGenerator[dict[str, Any]]) -> StreamingResponse:
    """The chat-completions flavour: `data:` lines only."""
    return StreamingResponse(_data_only(payloads), media_type="text/event-stream", headers=SSE_HEADERS)
