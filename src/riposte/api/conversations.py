"""`/v1/conversations`: create, retrieve, update, delete, and the conversation's items."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from openai.types.conversations import Conversation as ConversationObject
from openai.types.conversations import ConversationDeletedResource, ConversationItem, ConversationItemList
from pydantic import BaseModel, ConfigDict, field_validator

from riposte import ids
from riposte.api.body import parse_body
from riposte.api.include import requested_includes
from riposte.api.jsonresponse import json_response, list_body
from riposte.api.openapi import body, returns
from riposte.engine.conversation import CONVERSATION_PREFIX, new_conversation_items
from riposte.engine.item_includes import item_view
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.metadata import metadata_within_limits
from riposte.services import Services, services
from riposte.store.conversations import Conversation, ItemIdConflict

router = APIRouter()

Item = dict[str, Any]


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Any] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return metadata_within_limits(value)


class UpdateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str] | None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return metadata_within_limits(value)


class AddItemsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Any]


@router.post("/conversations", openapi_extra=body(CreateConversationRequest), responses=returns(ConversationObject))
async def create_conversation(request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, CreateConversationRequest)
    items = new_conversation_items(body.items or [])
    conversation = Conversation(
        id=ids.new_id(CONVERSATION_PREFIX.rstrip("_")), created_at=int(time.time()), metadata=body.metadata or {}
    )
    try:
        await svc.conversations.create(conversation, items)
    except ItemIdConflict as exc:
        raise _conflict(exc, items) from exc
    return json_response(conversation.as_object())


@router.get("/conversations/{conversation_id}", responses=returns(ConversationObject))
async def retrieve_conversation(conversation_id: str, svc: Services = Depends(services)) -> Response:
    return json_response((await _conversation(svc, conversation_id)).as_object())


@router.post("/conversations/{conversation_id}",
             openapi_extra=body(UpdateConversationRequest),
             responses=returns(ConversationObject))
async def update_conversation(conversation_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    body = await parse_body(request, UpdateConversationRequest)
    updated = await svc.conversations.update_metadata(conversation_id, body.metadata or {})
    if updated is None:
        raise _conversation_not_found(conversation_id)
    return json_response(updated.as_object())


@router.delete("/conversations/{conversation_id}", responses=returns(ConversationDeletedResource))
async def delete_conversation(conversation_id: str, svc: Services = Depends(services)) -> Response:
    if not await svc.conversations.delete(conversation_id):
        raise _conversation_not_found(conversation_id)
    return json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


@router.post("/conversations/{conversation_id}/items",
             openapi_extra=body(AddItemsRequest),
             responses=returns(ConversationItemList))
async def add_items(
    conversation_id: str, request: Request, includes: frozenset[str] = Depends(requested_includes),
    svc: Services = Depends(services),
) -> Response:
    body = await parse_body(request, AddItemsRequest)
    items = new_conversation_items(body.items)
    try:
        appended = await svc.conversations.append(conversation_id, items)
    except ItemIdConflict as exc:
        raise _conflict(exc, items) from exc
    if not appended:
        raise _conversation_not_found(conversation_id)
    return json_response(list_body([item_view(item, includes) for item in items], has_more=False))


@router.get("/conversations/{conversation_id}/items", responses=returns(ConversationItemList))
async def list_items(
    conversation_id: str,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    includes: frozenset[str] = Depends(requested_includes),
    svc: Services = Depends(services),
) -> Response:
    await _conversation(svc, conversation_id)
    if after is not None and await svc.conversations.get_item(conversation_id, after) is None:
        raise InvalidRequestError(f"No item with id '{after}' in conversation '{conversation_id}'.", param="after")
    page = await svc.conversations.list_items(conversation_id, after=after, limit=limit, order=order)
    return json_response(list_body([item_view(item, includes) for item in page.data], page.has_more))


@router.get("/conversations/{conversation_id}/items/{item_id}", responses=returns(ConversationItem))
async def retrieve_item(
    conversation_id: str, item_id: str, includes: frozenset[str] = Depends(requested_includes),
    svc: Services = Depends(services),
) -> Response:
    await _conversation(svc, conversation_id)
    item = await svc.conversations.get_item(conversation_id, item_id)
    if item is None:
        raise _item_not_found(conversation_id, item_id)
    return json_response(item_view(item, includes))


@router.delete("/conversations/{conversation_id}/items/{item_id}", responses=returns(ConversationObject))
async def delete_item(conversation_id: str, item_id: str, svc: Services = Depends(services)) -> Response:
    conversation = await _conversation(svc, conversation_id)
    if not await svc.conversations.delete_item(conversation_id, item_id):
        raise _item_not_found(conversation_id, item_id)
    return json_response(conversation.as_object())


async def _conversation(svc: Services, conversation_id: str) -> Conversation:
    conversation = await svc.conversations.get(conversation_id)
    if conversation is None:
        raise _conversation_not_found(conversation_id)
    return conversation



def _conflict(exc: ItemIdConflict, items: list[Item]) -> InvalidRequestError:
    positions = [i for i, item in enumerate(items) if item["id"] == exc.item_id]
    index = positions[1] if len(positions) > 1 else positions[0]  # a repeat within the call, or a taken id
    return InvalidRequestError(
        f"An item with id '{exc.item_id}' is already in this conversation.", param=f"items[{index}].id",
        code="conflict",
    )


def _conversation_not_found(conversation_id: str) -> NotFoundError:
    return NotFoundError(f"Conversation with id '{conversation_id}' not found.", param="conversation_id")


def _item_not_found(conversation_id: str, item_id: str) -> NotFoundError:
    return NotFoundError(f"Item with id '{item_id}' not found in conversation '{conversation_id}'.",
                         param="item_id")
