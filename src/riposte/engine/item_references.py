"""`item_reference` input items: `{"type": "item_reference", "id": ...}` stands for an item the
server already stores, an input or output item of a stored response or a conversation item.

Clients that re-send a whole chat with `store` on (the Vercel AI SDK) send their earlier output
items this way. Each reference is replaced by the item it names before validation and
translation, so it goes upstream exactly as if the client had sent the item itself; an unknown id
is a 400 naming the reference.
"""

from __future__ import annotations

from typing import Any, Protocol

from riposte.engine.item_models import validate_reference
from riposte.errors import InvalidRequestError

Item = dict[str, Any]
ITEM_REFERENCE = "item_reference"


class ItemLookup(Protocol):
    async def find_items(self, item_ids: list[str]) -> dict[str, Item]: ...


async def resolve_item_references(raw: str | list[Any], stores: list[ItemLookup]) -> str | list[Any]:
    """The input with every reference replaced by the item it names."""
    if isinstance(raw, str):
        return raw
    wanted = _referenced_ids(raw)
    if not wanted:
        return raw
    found: dict[str, Item] = {}
    for store in stores:
        missing = [item_id for item_id in wanted if item_id not in found]
        if missing:
            found.update(await store.find_items(missing))
    resolved: list[Any] = []
    for index, item in enumerate(raw):
        if not _is_reference(item):
            resolved.append(item)
            continue
        stored = found.get(item["id"])
        if stored is None:
            raise InvalidRequestError(f"Item with id '{item['id']}' not found.", param=f"input[{index}].id",
                                      code="item_not_found")
        resolved.append(stored)
    return resolved


def _referenced_ids(raw: list[Any]) -> list[str]:
    return [validate_reference(item, f"input[{index}]").id for index, item in enumerate(raw) if _is_reference(item)]


def _is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == ITEM_REFERENCE
