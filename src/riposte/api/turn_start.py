"""Starting a Responses turn from a validated create request: the one path behind
`POST /v1/responses` and the WebSocket `response.create` event."""

from __future__ import annotations

from riposte.auth.quotas import check_input_items
from riposte.engine.input_urls import govern_input_urls
from riposte.engine.recent_responses import RecentResponses
from riposte.engine.request import CreateResponseRequest
from riposte.engine.turn import Turn, prepare_turn
from riposte.errors import InvalidRequestError
from riposte.services import Services


def check_input_count(value: object, limit: int) -> None:
    """A 400 when `input` holds more items than the server takes in one request."""
    if isinstance(value, list) and len(value) > limit:
        raise InvalidRequestError(
            f"Invalid 'input': at most {limit} items are allowed in one request; got {len(value)}. Continue a "
            "long history with previous_response_id or a conversation instead of sending it whole.",
            param="input", code="array_above_max_length")


async def start_turn(body: CreateResponseRequest, svc: Services, recent: RecentResponses | None = None,
                     response_id: str | None = None) -> Turn:
    """Everything that can refuse the request runs here, before any event is sent. `recent` holds
    responses a WebSocket connection may continue without the store (see recent_responses.py);
    `response_id` is a queued background response's, when a worker runs it."""
    check_input_count(body.input, svc.settings.max_input_items)
    check_input_items(body.input)
    await govern_input_urls(body.input, svc.settings.outbound, svc.settings.input_urls)
    turn = await prepare_turn(body, svc.router, svc.responses, svc.conversations,
                              tool_factories=svc.tool_factories, max_infer_iters=svc.settings.max_infer_iters,
                              keyring=svc.keyring, max_output_chars=svc.settings.max_output_chars,
                              capture_trace=svc.settings.inspector.captures_traces, recent=recent,
                              guardrails=svc.guardrails, context_settings=svc.settings.context,
                              response_id=response_id)
    # Set on SIGTERM (and when the services close), before uvicorn's grace period ends.
    turn.server_stopping = lambda: svc.background.draining
    return turn
