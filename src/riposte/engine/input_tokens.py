"""`POST /v1/responses/input_tokens`: how many input tokens a create request would send.

The count covers exactly what the turn's first upstream call would carry: the instructions,
the history from `previous_response_id` or the conversation, the new input (item references
resolved, sealed reasoning opened, compaction items expanded, in a valid chat order; with
`truncation: "auto"`, the oldest messages dropped to fit the window) and the tool definitions. It uses the
tokenizer that counts usage when a backend reports none, so the two agree.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict

from riposte.engine.chat_sequence import valid_chat_sequence
from riposte.engine.compaction_items import expand_compactions
from riposte.engine.context_fit import truncated, upstream_messages
from riposte.engine.context_windows import ContextSettings, context_window
from riposte.engine.conversation import history_messages, requested_conversation_id
from riposte.engine.encrypted_reasoning import open_sealed_reasoning
from riposte.engine.item_references import ItemLookup, resolve_item_references
from riposte.engine.items import input_as_items
from riposte.engine.request import CreateResponseRequest, ReasoningParam, TextParam, reject_unsupported
from riposte.engine.translate import Message, chat_function_tool, items_to_messages
from riposte.engine.turn import load_previous
from riposte.engine.usage import count_input_tokens_off_loop
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.sealing import Keyring
from riposte.store.conversations import ConversationStore
from riposte.store.responses import ResponseStore


class InputTokensRequest(BaseModel):
    """The SDK's `InputTokenCountParams`; unknown fields are a 400, as for create."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    text: TextParam | None = None
    truncation: Literal["auto", "disabled"] | None = None
    # OpenAI's preset system prompts; Riposte has none, so reject_unsupported names it.
    personality: str | None = None

    def as_create(self) -> CreateResponseRequest:
        fields = self.model_dump(exclude_unset=True, exclude={"model", "personality"})
        # The model only routes a turn; a count needs none, so a placeholder stands in for it.
        return CreateResponseRequest(model=self.model or "input-token-count", **{"input": [], **fields})


async def count_request_input_tokens(
    request: InputTokensRequest, store: ResponseStore, conversations: ConversationStore, keyring: Keyring,
    context: ContextSettings,
) -> int:
    if request.personality is not None:
        raise InvalidRequestError("'personality' is not supported by this server: it has no preset system prompts.",
                                  param="personality", code="unsupported_parameter")
    create = request.as_create()
    reject_unsupported(create)
    assert create.input is not None
    lookups: list[ItemLookup] = [store, conversations]
    items = input_as_items(await resolve_item_references(create.input, lookups))
    history = await _history(create, store, conversations, keyring)
    opened = expand_compactions(open_sealed_reasoning(items, keyring), keyring)
    if opened.compacted:
        history = []  # the compaction item stands for everything before it
    conversation = valid_chat_sequence(history + items_to_messages(opened.items, history))
    tools = _tool_definitions(create.tools or [])
    if create.truncation == "auto":
        window = context_window(context, create.model, create.model)
        conversation = await anyio.to_thread.run_sync(truncated, create, tools, conversation, window)
    return await count_input_tokens_off_loop(upstream_messages(create, conversation), tools)


async def _history(create: CreateResponseRequest, store: ResponseStore,
                   conversations: ConversationStore, keyring: Keyring) -> list[Message]:
    if create.conversation is not None:
        conversation_id = requested_conversation_id(create.conversation)
        if await conversations.get(conversation_id) is None:
            raise NotFoundError(f"Conversation with id '{conversation_id}' not found.", param="conversation")
        return history_messages(await conversations.all_items(conversation_id), keyring)
    previous = await load_previous(create.previous_response_id, store)
    return list(previous.messages) if previous else []


def _tool_definitions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function tools as the upstream sees them; other tools as the client declared them."""
    return [chat_function_tool(tool, index) if tool.get("type") == "function" else tool
            for index, tool in enumerate(tools)]
