"""WebSocket mode's messages, as pure translation: client events in, server events out.

A client sends `response.create` events: the fields of `POST /v1/responses`, plus the
WebSocket-only `stream_id` (its lane). The server sends the same events a streamed
`POST /v1/responses` sends, tagged with the lane when the client named one, and `error` events
for requests it refuses, in the shape of openai-python's `ResponseWsError`.
"""

from __future__ import annotations

from typing import Any

from riposte.errors import InvalidRequestError, RiposteError
from riposte.param_path import has_control_characters

CREATE = "response.create"
MAX_STREAM_ID_LENGTH = 256
# Client events of OpenAI's WebSocket mode that Riposte does not take, and why.
_UNSUPPORTED_EVENTS = {
    "response.steer": "steering a running response needs a model that accepts input mid-answer; "
                      "send a new response.create with previous_response_id instead",
}


def event_type(message: dict[str, Any]) -> str:
    """The client event's `type`; only `response.create` is taken."""
    kind = message.get("type")
    if kind is None:
        raise InvalidRequestError("Missing required parameter: 'type'.", param="type",
                                  code="missing_required_parameter")
    if kind in _UNSUPPORTED_EVENTS:
        raise InvalidRequestError(f"'{kind}' is not supported by this server: {_UNSUPPORTED_EVENTS[kind]}.",
                                  param="type", code="unsupported_event_type")
    if kind != CREATE:
        raise InvalidRequestError(f"Unknown client event type {kind!r}; this endpoint takes '{CREATE}'.",
                                  param="type", code="unknown_event_type")
    return CREATE


def lane_of(message: dict[str, Any]) -> str | None:
    """The event's `stream_id`: responses on one lane run one after another, lanes side by side."""
    lane = message.get("stream_id")
    if lane is None:
        return None
    if not isinstance(lane, str) or not lane or len(lane) > MAX_STREAM_ID_LENGTH or has_control_characters(lane):
        raise InvalidRequestError(
            f"'stream_id' must be a non-empty string of at most {MAX_STREAM_ID_LENGTH} printable characters.",
            param="stream_id", code="invalid_value")
    return lane


def create_fields(message: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The `POST /v1/responses` body inside a `response.create` event, streaming as WebSocket mode
    always does, and `generate` (False: a warm-up that prepares the turn without calling the
    model). `background` is refused here, by name."""
    fields = {name: value for name, value in message.items() if name not in ("type", "stream_id", "generate")}
    if fields.get("stream", True) is not True:
        raise InvalidRequestError("Responses over a WebSocket always stream: leave 'stream' out.", param="stream",
                                  code="invalid_value")
    if fields.get("background"):
        raise InvalidRequestError("background is not supported over WebSocket; create background responses "
                                  "with POST /v1/responses.", param="background", code="unsupported_parameter")
    generate = True if message.get("generate") is None else message["generate"]
    if not isinstance(generate, bool):
        raise InvalidRequestError("'generate' must be a boolean.", param="generate", code="invalid_type")
    fields["stream"] = True
    return fields, generate


def error_event(error: RiposteError, lane: str | None) -> dict[str, Any]:
    """`{"type": "error", "status": ..., "error": {...}}`: the HTTP status and error envelope the
    same request would have had, with the headers it would have carried (e.g. `retry-after`)."""
    body: dict[str, Any] = {"message": error.message, "type": error.error_type, "param": error.param,
                            "code": error.code}
    headers = {name.lower(): value for name, value in error.headers().items()}
    if error.should_retry is not None:
        headers["x-should-retry"] = "true" if error.should_retry else "false"
    if headers:
        body["headers"] = headers
    return on_lane({"type": "error", "status": error.status_code, "error": body}, lane)


def stream_error_event(event: dict[str, Any], failure: RiposteError | None) -> dict[str, Any]:
    """The `error` event a failing turn sends before `response.failed`, in WebSocket mode's shape:
    over SSE its fields are top-level (`code`, `message`, `param`); over a WebSocket they sit in
    an `error` object, and `sequence_number` says it belongs to the response's stream."""
    error_type = failure.error_type if failure is not None else "server_error"
    return {"type": "error", "sequence_number": event["sequence_number"],
            "error": {"type": error_type, "code": event.get("code"), "message": event.get("message", ""),
                      "param": event.get("param")}}


def on_lane(event: dict[str, Any], lane: str | None) -> dict[str, Any]:
    """The event as sent: with `stream_id` when its request named a lane (a copy, never the
    turn's own event object)."""
    return event if lane is None else {**event, "stream_id": lane}
