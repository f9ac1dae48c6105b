"""Server-sent events: an `event:` line plus a one-line JSON `data:` per event, written in batches."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import orjson

from riposte.api.batched_stream import Backpressure, BatchedStreamingResponse
from riposte.relay import Relay

DONE = b"data: [DONE]\n\n"
FRAME_END = b"\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A stream's events, in batches of those ready together, or relays of them (riposte/relay.py).
EventBatches = AsyncGenerator[Sequence[dict[str, Any]] | Relay[Any, dict[str, Any]]]


def encode_event(event: dict[str, Any]) -> bytes:
    return event_frame(event["type"], orjson.dumps(event))


def event_frame(kind: str, data: bytes) -> bytes:
    """One event's SSE bytes, given its type and its JSON."""
    head = _HEADS.get(kind)
    if head is None:
        head = _HEADS[kind] = b"event: " + kind.encode() + b"\ndata: "
    return head + data + FRAME_END


# Each event type's `event:` line and the start of its `data:` line, made once per type (the state
# machine's few dozen types), not once per event.
_HEADS: dict[str, bytes] = {}


def encode_data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def event_stream_response(events: EventBatches,
                          encode: Callable[[dict[str, Any]], bytes] = encode_event, *,
                          backpressure: Backpressure | None = None) -> BatchedStreamingResponse[dict[str, Any]]:
    """The events, which come in batches of those ready together (or relays of them: riposte/relay.py)."""
    return BatchedStreamingResponse(events, encode, trailer=DONE, media_type="text/event-stream",
                                    headers=SSE_HEADERS, backpressure=backpressure)


def data_stream_response(
    payloads: AsyncGenerator[Sequence[dict[str, Any]]],
) -> BatchedStreamingResponse[dict[str, Any]]:
    """The chat-completions flavour: `data:` lines only."""
    return BatchedStreamingResponse(payloads, encode_data, trailer=DONE, media_type="text/event-stream",
                                    headers=SSE_HEADERS)
