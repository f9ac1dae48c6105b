"""`POST /v1/responses/compact`: a conversation's window, compacted.

The window is what a turn would read: the history of `previous_response_id` or `conversation`,
then `input`. The model summarizes all of it (engine/summarize.py, through the same provider as
a turn); the answer's `output` is the latest exchange kept verbatim (the last user message and
the items after it, when they take at most `context.keep_share` of the window) followed by one
`compaction` item holding the sealed summary. Sent back as input, that output continues the
conversation from the summary. Nothing is stored: the compacted window lives with the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from riposte import ids
from riposte.engine.chat_sequence import valid_chat_sequence
from riposte.engine.compaction_items import CompactionSummary, compaction_item, expand_compactions, kept_items
from riposte.engine.context_windows import ContextSettings, context_window
from riposte.engine.conversation import history_messages, requested_conversation_id
from riposte.engine.encrypted_reasoning import open_sealed_reasoning
from riposte.engine.item_references import ItemLookup, resolve_item_references
from riposte.engine.items import Item, input_as_items, stored_items
from riposte.engine.request import MAX_MODEL_LENGTH, ServiceTier
from riposte.engine.request_fields import REQUEST_FIELDS
from riposte.engine.summarize import summarize
from riposte.engine.translate import Message, items_to_messages
from riposte.engine.turn import load_previous
from riposte.engine.usage import sampled_token_count
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.inference.router import ModelRouter
from riposte.param_path import printable
from riposte.sealing import Keyring
from riposte.store.conversations import ConversationStore
from riposte.store.responses import ResponseStore


class CompactRequest(BaseModel):
    """The SDK's `ResponseCompactParams`, plus `conversation`; unknown fields are a 400."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=MAX_MODEL_LENGTH), printable]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: Annotated[str, printable] | None = None
    conversation: str | dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    # A cache hint with nothing to act on here: accepted, as on create.
    prompt_cache_retention: Any = None
    service_tier: ServiceTier | None = None
    image: Any = None
    prompt_cache_options: Any = None


@dataclass(frozen=True)
class CompactServices:
    router: ModelRouter
    responses: ResponseStore
    conversations: ConversationStore
    keyring: Keyring
    settings: ContextSettings


async def compact(request: CompactRequest, svc: CompactServices) -> dict[str, Any]:
    """The `response.compaction` object for the request's window."""
    _check(request)
    route = svc.router.resolve(request.model)
    lookups: list[ItemLookup] = [svc.responses, svc.conversations]
    raw = await resolve_item_references(request.input, lookups) if request.input is not None else []
    items = input_as_items(raw)
    prior_items, history = await _prior(request, svc)
    opened = expand_compactions(open_sealed_reasoning(items, svc.keyring), svc.keyring)
    if opened.compacted:
        history = []
    conversation = valid_chat_sequence(history + items_to_messages(opened.items, history))
    if not conversation:
        raise InvalidRequestError("There is nothing to compact: give input, previous_response_id or conversation.",
                                  param="input", code="missing_required_parameter")
    messages = [{"role": "system", "content": request.instructions}, *conversation] if request.instructions \
        else conversation
    window = context_window(svc.settings, request.model, route.upstream_model)
    options = {"prompt_cache_key": request.prompt_cache_key, "service_tier": request.service_tier}
    summary = await summarize(route, messages, window, svc.settings.summary_max_tokens,
                              {key: value for key, value in options.items() if value is not None})
    kept = _kept(prior_items + stored_items(items), int(window * svc.settings.keep_share))
    return {
        "id": ids.new_id("cmpr"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, compaction_item(svc.keyring, CompactionSummary(summary.text, len(kept)))],
        "usage": summary.usage.as_response_usage(),
    }


def _check(request: CompactRequest) -> None:
    for name in ("image", "prompt_cache_options"):
        if getattr(request, name) is not None:
            raise InvalidRequestError(f"'{name}' is not supported by this server: {REQUEST_FIELDS[name].how}.",
                                      param=name, code="unsupported_parameter")
    if request.conversation is not None and request.previous_response_id is not None:
        raise InvalidRequestError("'conversation' and 'previous_response_id' are mutually exclusive: compact "
                                  "either a conversation or a response chain.", param="conversation",
                                  code="mutually_exclusive_parameters")


async def _prior(request: CompactRequest, svc: CompactServices) -> tuple[list[Item], list[Message]]:
    """The items and chat history before the input, from the chain or the conversation."""
    if request.conversation is not None:
        conversation_id = requested_conversation_id(request.conversation)
        if await svc.conversations.get(conversation_id) is None:
            raise NotFoundError(f"Conversation with id '{conversation_id}' not found.", param="conversation")
        items = await svc.conversations.all_items(conversation_id)
        return items, history_messages(items, svc.keyring)
    previous = await load_previous(request.previous_response_id, svc.responses)
    if previous is None:
        return [], []
    return previous.input_items + previous.response["output"], list(previous.messages)


def _kept(items: list[Item], budget: int) -> list[Item]:
    """The latest exchange, verbatim, when it fits the budget; else nothing."""
    count = kept_items(items)
    tail = items[len(items) - count:] if count else []
    return tail if sampled_token_count(orjson.dumps(tail).decode()) <= budget else []
