"""`/v1/responses`: create (JSON or SSE), retrieve, delete, list, input items."""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseItemList
from openai.types.responses.compacted_response import CompactedResponse
from openai.types.responses.input_token_count_response import InputTokenCountResponse

from riposte.api.body import parse_body
from riposte.api.disconnect import NoReply, client_left_during
from riposte.api.include import requested_includes
from riposte.api.jsonresponse import json_response, list_body
from riposte.api.openapi import Deleted, body, returns, returns_list
from riposte.api.recorded_stream import recorded_event_stream
from riposte.api.sse import event_stream_response
from riposte.api.turn_start import check_input_count, start_turn
from riposte.auth.principal import current_principal
from riposte.auth.quotas import check_input_items
from riposte.background import queue_turn
from riposte.engine.compact import CompactRequest, CompactServices, compact
from riposte.engine.encrypted_reasoning import ENCRYPTED_REASONING, with_sealed_reasoning
from riposte.engine.input_tokens import InputTokensRequest, count_request_input_tokens
from riposte.engine.input_urls import govern_input_urls
from riposte.engine.item_includes import item_view
from riposte.engine.request import CreateResponseRequest
from riposte.engine.resume import ACTIVE_STATUSES, follow
from riposte.engine.turn import Turn
from riposte.errors import ConflictError, InvalidRequestError, NotFoundError
from riposte.services import Services, services
from riposte.store.background_jobs import CancelOutcome
from riposte.store.event_log import MAX_SEQUENCE_NUMBER
from riposte.store.responses import StoredResponse

router = APIRouter()
# OpenAPI describes no WebSocket, so the create operation says where WebSocket mode is.
WEBSOCKET_MODE = ("Creates a model response. The same path also accepts a WebSocket upgrade (WebSocket mode, "
                  "openai-python's `client.responses.connect()`): each `response.create` message takes this body "
                  "(without `stream`; `stream_id` names a lane) and is answered with the streamed events as "
                  "messages, or an `error` message.")


@router.post("/responses", openapi_extra=body(CreateResponseRequest), responses=returns(OpenAIResponse, streams=True),
             description=WEBSOCKET_MODE)
async def create_response(request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, CreateResponseRequest)
    turn = await start_turn(body, svc)
    if body.background:
        return await _start_background(turn, body, svc)
    if body.stream:
        if turn.should_store and svc.settings.stream_resume:
            return recorded_event_stream(turn.relayed_event_batches(), svc.event_log, turn.response["id"])
        return event_stream_response(turn.relayed_event_batches())
    if await client_left_during(request.receive, lambda: _run_to_end(turn)):
        return NoReply()  # the turn ran to its end and is stored; the client is gone
    if turn.failure is not None:
        raise turn.failure
    return json_response(turn.response)


async def _run_to_end(turn: Turn) -> None:
    async with aclosing(turn.event_batches()) as batches:
        async for _ in batches:
            pass


@router.post("/responses/input_tokens", openapi_extra=body(InputTokensRequest),
             responses=returns(InputTokenCountResponse))
async def count_input_tokens(request: Request, svc: Services = Depends(services)) -> Response:
    parsed = await parse_body(request, InputTokensRequest)
    check_input_count(parsed.input, svc.settings.max_input_items)
    tokens = await count_request_input_tokens(parsed, svc.responses, svc.conversations, svc.keyring,
                                              svc.settings.context)
    return json_response({"object": "response.input_tokens", "input_tokens": tokens})


@router.post("/responses/compact", openapi_extra=body(CompactRequest), responses=returns(CompactedResponse))
async def compact_response(request: Request, svc: Services = Depends(services)) -> Response:
    parsed = await parse_body(request, CompactRequest)
    check_input_count(parsed.input, svc.settings.max_input_items)
    check_input_items(parsed.input)
    await govern_input_urls(parsed.input, svc.settings.outbound, svc.settings.input_urls)
    compacted = await compact(parsed, CompactServices(svc.router, svc.responses, svc.conversations, svc.keyring,
                                                      svc.settings.context))
    return json_response(compacted)


@router.get("/responses", responses=returns_list(OpenAIResponse))
async def list_responses(
    after: str | None = None,
    limit: int = Query(default=50, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    model: str | None = None,
    svc: Services = Depends(services),
) -> Response:
    page = await svc.responses.list(after=after, limit=limit, order=order, model=model)
    return json_response(list_body(page.data, page.has_more))


@router.get("/responses/{response_id}", responses=returns(OpenAIResponse, streams=True))
async def retrieve_response(
    response_id: str,
    stream: bool = False,
    starting_after: int | None = Query(default=None, ge=0, le=MAX_SEQUENCE_NUMBER),
    include_obfuscation: bool | None = None,  # accepted: Riposte's events carry no obfuscation padding
    includes: frozenset[str] = Depends(requested_includes),
    svc: Services = Depends(services),
) -> Response:
    response = await svc.responses.get_response(response_id)
    if response is None:
        raise _not_found(response_id)
    if not stream:
        if starting_after is not None:
            raise InvalidRequestError("starting_after is only allowed when stream is true.", param="starting_after")
        # The output is stored as created, with what that request included; retrieval may add the
        # sealed reasoning (the other includes show fields the stored output already holds).
        if ENCRYPTED_REASONING in includes:
            response = {**response, "output": with_sealed_reasoning(response["output"], svc.keyring)}
        return json_response(response)
    if not response.get("background") and not await _has_stream(svc, response_id):
        raise InvalidRequestError(
            f"Response '{response_id}' has no stored stream to resume: only background responses can be "
            "streamed again (and, where the server sets stream_resume, stored responses created with "
            "stream=true).", param="stream")
    return _followed(svc, response_id, -1 if starting_after is None else starting_after)


@router.post("/responses/{response_id}/cancel", responses=returns(OpenAIResponse))
async def cancel_response(response_id: str, svc: Services = Depends(services)) -> Response:
    response = await svc.responses.get_response(response_id)
    if response is None:
        raise _not_found(response_id)
    if not response.get("background"):
        raise ConflictError("Only responses created with background=true can be cancelled.", param="response_id",
                            code="not_background")
    outcome = await svc.background.cancel(response_id)
    if outcome is CancelOutcome.REQUESTED:
        await _until_ended(svc, response_id, svc.settings.background_lease_seconds)
    current = await svc.responses.get_response(response_id)
    if current is None:
        raise _not_found(response_id)
    if current["status"] not in ACTIVE_STATUSES and current["status"] != "cancelled":
        raise ConflictError(f"Response '{response_id}' has already ended ({current['status']}); it cannot be "
                            "cancelled.", param="response_id", code="response_already_ended")
    return json_response(current)


async def _start_background(turn: Turn, body: CreateResponseRequest, svc: Services) -> Response:
    caller = current_principal.get()
    queued = await queue_turn(turn, body, caller.owner, caller.limit_key, caller.limits.max_concurrent_requests)
    svc.background.wake()
    if body.stream:
        return _followed(svc, queued["id"], -1)
    return json_response(queued)


async def _has_stream(svc: Services, response_id: str) -> bool:
    if await svc.event_log.has_events(response_id):
        return True
    await svc.event_log.flush()  # a stream that just ended here may still be in the buffer
    return await svc.event_log.has_events(response_id)


def _followed(svc: Services, response_id: str, after: int) -> Response:
    return event_stream_response(follow(svc.event_log, svc.responses, response_id, after,
                                        poll_seconds=svc.settings.resume_poll_seconds))


async def _until_ended(svc: Services, response_id: str, timeout: float) -> None:
    """Wait for the worker holding a cancelled response to stop it (on any process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await svc.responses.status(response_id) not in ACTIVE_STATUSES:
            return
        await svc.event_log.wait_for_more(response_id, svc.settings.resume_poll_seconds)


@router.delete("/responses/{response_id}", responses=returns(Deleted))
async def delete_response(response_id: str, svc: Services = Depends(services)) -> Response:
    if not await svc.responses.delete(response_id):
        raise _not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True})


@router.get("/responses/{response_id}/input_items", responses=returns(ResponseItemList))
async def list_input_items(
    response_id: str,
    after: str | None = None,
    before: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    includes: frozenset[str] = Depends(requested_includes),
    svc: Services = Depends(services),
) -> Response:
    items = [item_view(item, includes) for item in (await _stored(svc, response_id)).input_items]
    ordered = items if order == "asc" else list(reversed(items))
    window = _between(ordered, after, before)
    # `before` asks for the previous page: the items just before the cursor.
    page = window[-limit:] if before is not None else window[:limit]
    return json_response(list_body(page, len(window) > limit))


def _between(items: list[dict[str, Any]], after: str | None, before: str | None) -> list[dict[str, Any]]:
    positions = {item.get("id"): index for index, item in enumerate(items)}
    start = 0
    end = len(items)
    if after is not None:
        if after not in positions:
            raise InvalidRequestError(f"No input item with id '{after}'.", param="after")
        start = positions[after] + 1
    if before is not None:
        if before not in positions:
            raise InvalidRequestError(f"No input item with id '{before}'.", param="before")
        end = positions[before]
    return items[start:end]



async def _stored(svc: Services, response_id: str) -> StoredResponse:
    stored = await svc.responses.get(response_id)
    if stored is None:
        raise _not_found(response_id)
    return stored


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")
