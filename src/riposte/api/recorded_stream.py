"""The event stream of a stored response that its own request runs, with each event also kept in
the event log for a later resume (`GET /v1/responses/{id}?stream=true&starting_after=N`).

Each event is encoded once, for the client and for the log, inside the stream's own encoder: no
extra generator layer per event, and the log holds bytes, not dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from riposte.api.batched_stream import BatchedStreamingResponse
from riposte.api.sse import FRAME_END, EventBatches, event_frame, event_stream_response
from riposte.store.event_log import EventLog


def recorded_event_stream(events: EventBatches, log: EventLog,
                          response_id: str) -> BatchedStreamingResponse[dict[str, Any]]:
    """The SSE response of `events`, stored as they leave (the stream waits while `log` is full)."""
    return event_stream_response(events, _recording_encoder(log, response_id), backpressure=log)


def _recording_encoder(log: EventLog, response_id: str) -> Callable[[dict[str, Any]], bytes]:
    append = log.append

    def encode(event: dict[str, Any]) -> bytes:
        data = orjson.dumps(event)
        frame = event_frame(event["type"], data)
        # The log keeps the frame, which holds the JSON and is right-sized (store/event_log.py).
        end = len(frame) - len(FRAME_END)
        append(response_id, event["sequence_number"], frame, end - len(data), end)
        return frame

    return encode
