"""Checks on a turn's items taken together, before anything is called or stored: what OpenAI
refuses with a 400 about `input` rather than pass on a history no model should see.

- Each item id appears once. An item sent again (in full or as an `item_reference`) on top of a
  `previous_response_id` that already holds it would go upstream twice, and its id would stand
  for two places in the stored input items, so that paging by it skips items.
- Each client tool call is answered: a `function_call` (or custom, shell or patch call) in the
  history or the input needs its output in the same request or before it. Without one, Chat
  Completions backends either refuse the history (OpenAI) or take it silently and lose track of
  the call. A call cut short by the output limit (`incomplete`) has nothing to answer.

Pure: the caller passes the items already in context (`prior`) and the request's own (`new`).
"""

from __future__ import annotations

from collections.abc import Sequence

from riposte.engine.client_items import CALL_ITEM_TYPES, OUTPUT_ITEM_TYPES, call_id_of
from riposte.engine.item_models import item_type
from riposte.engine.items import Item
from riposte.errors import InvalidRequestError


def check_item_ids_unique(prior: Sequence[Item], new: Sequence[Item]) -> None:
    seen = {item_id for item in prior if isinstance(item_id := item.get("id"), str)}
    for index, item in enumerate(new):
        item_id = item.get("id")
        if not isinstance(item_id, str):
            continue
        if item_id in seen:
            raise InvalidRequestError(
                f"Duplicate item found with id {item_id}. Remove duplicate items from your input and try again.",
                param=f"input[{index}]", code="duplicate_item")
        seen.add(item_id)


def check_calls_answered(prior: Sequence[Item], new: Sequence[Item]) -> None:
    items = [*prior, *new]
    answered = {call_id_of(item) for item in items if item_type(item) in OUTPUT_ITEM_TYPES}
    for item in items:
        if item_type(item) in CALL_ITEM_TYPES and item.get("status") != "incomplete" \
                and call_id_of(item) not in answered:
            raise InvalidRequestError(f"No tool output found for {item_type(item)} {call_id_of(item)}.",
                                      param="input", code="missing_tool_output")
