"""Input items: the validated `input` of a request, and the stored form `input_items` lists.

Pure functions. Validation lives with the item models (`item_models.py`). The stored form is what
the official SDK parses as `ResponseItem`: messages carry content parts, every item has an `id`
and (where its type has one) a `status`.
"""

from __future__ import annotations

from typing import Any

from riposte import ids
from riposte.engine.item_models import ITEM_MODELS, ItemModel, validate_item
from riposte.engine.item_models import item_type as item_type  # re-exported: callers read it from here too

Item = dict[str, Any]


def input_as_items(raw: str | list[dict[str, Any]]) -> list[Item]:
    """The request's `input`, validated, as a list of item dicts (a string is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    for index, item in enumerate(raw):
        validate_item(item, f"input[{index}]", in_input=True)
    return [dict(item) for item in raw]


def stored_items(items: list[Item]) -> list[Item]:
    """Items as `input_items` returns them: ids, statuses and content parts filled in."""
    return [_stored_item(item) for item in items]


def _stored_item(item: Item) -> Item:
    kind = item_type(item)
    if kind == "message":
        return _stored_message(item)
    model = ITEM_MODELS.get(kind, ItemModel)
    stored = {**item, "type": kind, "id": item.get("id") or ids.new_id(model.id_prefix)}
    if model.has_status:
        stored.setdefault("status", "completed")
    return stored


def _stored_message(item: Item) -> Item:
    role = item["role"]
    content = item["content"]
    text_type = "output_text" if role == "assistant" else "input_text"
    parts = [{"type": text_type, "text": content}] if isinstance(content, str) else [dict(p) for p in content]
    if role == "assistant":
        parts = [_output_part(p) for p in parts]
    return {
        "id": item.get("id") or ids.message_id(),
        "type": "message",
        "role": role,
        "status": item.get("status") or "completed",
        "content": parts,
    }


def _output_part(part: Item) -> Item:
    if part.get("type") == "input_text":
        part = {"type": "output_text", "text": part["text"]}
    if part.get("type") == "output_text":
        part.setdefault("annotations", [])
        part.setdefault("logprobs", [])
    return part

