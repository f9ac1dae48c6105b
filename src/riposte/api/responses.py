"""`/v1/responses`: create (JSON or SSE), retrieve, delete, list, input items."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseItemList
from openai.types.responses.compacted_response import CompactedResponse
from openai.types.responses.input_token_count_response import InputTokenCountResponse

from riposte.api.body import parse_body
from riposte.api.include import requested_includes
from riposte.api.jsonresponse import json_response, list_body
from riposte.api.openapi import Deleted, body, returns, returns_list
from riposte.api.sse import event_stream_response
from riposte.api.turn_start import start_turn
from riposte.auth.quotas import check_input_items
from riposte.engine.compact import CompactRequest, CompactServices, compact
from riposte.engine.input_tokens import InputTokensRequest, count_request_input_tokens
from riposte.engine.input_urls import govern_input_urls
from riposte.engine.item_includes import item_view
from riposte.engine.request import CreateResponseRequest
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.services import Services, services
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
    turn = await start_turn(await parse_body(request, CreateResponseRequest), svc)
    if turn.request.stream:
        return event_stream_response(turn.events())
    async with aclosing(turn.events()) as events:
        async for _ in events:
            pass
    if turn.failure is not None:
        raise turn.failure
    return json_response(turn.response)


@router.post("/responses/input_tokens", openapi_extra=body(InputTokensRequest),
             responses=returns(InputTokenCountResponse))
async def count_input_tokens(request: Request, svc: Services = Depends(services)) -> Response:
    parsed = await parse_body(request, InputTokensRequest)
    tokens = await count_request_input_tokens(parsed, svc.responses, svc.conversations, svc.keyring,
                                              svc.settings.context)
    return json_response({"object": "response.input_tokens", "input_tokens": tokens})


@router.post("/responses/compact", openapi_extra=body(CompactRequest), responses=returns(CompactedResponse))
async def compact_response(request: Request, svc: Services = Depends(services)) -> Response:
    parsed = await parse_body(request, CompactRequest)
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


@router.get("/responses/{response_id}", responses=returns(OpenAIResponse))
async def retrieve_response(response_id: str, svc: Services = Depends(services)) -> Response:
    response = await svc.responses.get_response(response_id)
    if response is None:
        raise _not_found(response_id)
    return json_response(response)


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
    page = window[:limit]
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
