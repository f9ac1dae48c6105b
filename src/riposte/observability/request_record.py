"""What one HTTP request did, filled in as it runs and written as its log line when it ends.

The middleware opens the record; the engine adds the response id, model, provider, upstream
status and tokens through the functions here, which do nothing outside a request (tests, tools).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass
class RequestRecord:
    request_id: str
    method: str
    path: str
    response_id: str | None = None
    model: str | None = None
    provider: str | None = None
    upstream_status: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    # Set once a failure has been logged with its cause, so the edge does not log it again.
    error: str | None = None

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}


current_request: ContextVar[RequestRecord | None] = ContextVar("riposte_request", default=None)


def note_turn(response_id: str, model: str, provider: str) -> None:
    record = current_request.get()
    if record is not None:
        record.response_id, record.model, record.provider = response_id, model, provider


def note_upstream_status(status: int) -> None:
    record = current_request.get()
    if record is not None:
        record.upstream_status = status


def note_tokens(tokens_in: int, tokens_out: int) -> None:
    record = current_request.get()
    if record is not None:
        record.tokens_in, record.tokens_out = tokens_in, tokens_out


def note_error(message: str) -> bool:
    """Remember a logged failure; False when one was already noted for this request."""
    record = current_request.get()
    if record is None:
        return True
    first = record.error is None
    record.error = record.error or message
    return first
