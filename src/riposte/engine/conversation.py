"""A turn inside a conversation: the history it replays, and the items it appends afterwards.

Failure semantics: only a turn that ends `completed` or `incomplete` appends, and then it appends
its input items and every output item in one transaction. A failed or abandoned turn appends
nothing, so the conversation stays as it was and the client can simply retry. (`store: false`
only keeps the response object from being stored; the conversation is state the client asked
for explicitly, so the turn is still appended.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riposte.engine.compaction_items import expand_compactions
from riposte.engine.item_models import validate_item
from riposte.engine.items import Item, stored_items
from riposte.engine.translate import Message, items_to_messages
from riposte.errors import InvalidRequestError, NotFoundError
from riposte.param_path import has_control_characters
from riposte.sealing import Keyring
from riposte.store.conversations import ConversationStore, ItemIdConflict

CONVERSATION_PREFIX = "conv_"
MAX_ITEMS_PER_CALL = 20


@dataclass(frozen=True)
class ConversationSync:
    store: ConversationStore
    conversation_id: str
    history: list[Message]
    new_items: list[Item]
    # The conversation's stored items, oldest first (server tools look for their earlier items).
    items: tuple[Item, ...] = ()

    async def append_turn(self, output: list[Item]) -> None:
        """Append this turn's input and output items, atomically, after a successful turn."""
        try:
            appended = await self.store.append(self.conversation_id, [*self.new_items, *output])
        except ItemIdConflict as exc:
            raise InvalidRequestError(
                f"Item id '{exc.item_id}' is already in conversation '{self.conversation_id}'; nothing was appended.",
                param="conversation", code="conflict",
            ) from exc
        if not appended:
            raise NotFoundError(
                f"Conversation '{self.conversation_id}' was deleted during the turn; nothing was appended.",
                param="conversation",
            )


async def open_conversation(
    conversation: str | dict[str, Any] | None, store: ConversationStore | None, new_items: list[Item],
    keyring: Keyring,
) -> ConversationSync | None:
    """Resolve a create-response `conversation` and load all of its items as history."""
    if conversation is None:
        return None
    conversation_id = requested_conversation_id(conversation)
    if store is None or await store.get(conversation_id) is None:
        raise NotFoundError(f"Conversation with id '{conversation_id}' not found.", param="conversation")
    await _reject_taken_ids(store, conversation_id, new_items)
    items = await store.all_items(conversation_id)
    return ConversationSync(store=store, conversation_id=conversation_id, history=history_messages(items, keyring),
                            new_items=new_items, items=tuple(items))


def new_conversation_items(raw: list[Any], param: str = "items") -> list[Item]:
    """Items a client adds to a conversation, validated, in their stored form (ids minted)."""
    if len(raw) > MAX_ITEMS_PER_CALL:
        raise InvalidRequestError(
            f"At most {MAX_ITEMS_PER_CALL} items can be added at a time; got {len(raw)}.", param=param,
            code="array_above_max_length",
        )
    for index, item in enumerate(raw):
        validate_item(item, f"{param}[{index}]", in_input=False)
    return stored_items(raw)


def requested_conversation_id(conversation: str | dict[str, Any]) -> str:
    param = "conversation"
    value: Any = conversation
    if isinstance(conversation, dict):
        param, value = "conversation.id", conversation.get("id")
    if not isinstance(value, str) or not value.startswith(CONVERSATION_PREFIX) or has_control_characters(value):
        raise InvalidRequestError(
            f"Invalid conversation id {value!r}: expected a printable id that begins with '{CONVERSATION_PREFIX}'.",
            param=param, code="invalid_value",
        )
    return value


async def _reject_taken_ids(store: ConversationStore, conversation_id: str, new_items: list[Item]) -> None:
    ids = [item["id"] for item in new_items]
    taken = await store.taken_item_ids(conversation_id, ids)
    for index, item_id in enumerate(ids):
        if item_id in taken or item_id in ids[:index]:
            raise InvalidRequestError(
                f"An item with id '{item_id}' is already in conversation '{conversation_id}'.",
                param=f"input[{index}].id", code="conflict",
            )


def history_messages(items: list[Item], keyring: Keyring) -> list[Message]:
    """Chat messages for a conversation's stored items, oldest first.

    Stored message items always hold their content as a list of parts, so history goes upstream
    as a list of text parts while new string input stays a string: exactly the shape of the
    reference recordings (e.g. 2c7ef062...). Replay matching also treats a string content and a
    single text part as equal (`_normalize_message` in inference/recording.py), since every chat
    API reads them the same way.
    """
    try:
        return items_to_messages(expand_compactions(items, keyring, "conversation.items").items, [])
    except InvalidRequestError as exc:
        raise InvalidRequestError(
            f"The conversation's items cannot be replayed: {exc.message}", param="conversation"
        ) from exc
