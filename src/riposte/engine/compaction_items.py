"""`compaction` items: a model-written summary of a conversation, sealed for the client to carry.

A compaction item stands for everything before it. Its sealed payload holds the summary and how
many of the items right before it were kept verbatim (the latest exchange). Given back as input,
the latest compaction item expands for the backend into one user message holding the summary,
placed before those kept items; everything older is dropped (the summary covers it, history from
`previous_response_id` or a conversation included), as the hosted API lets clients drop it too.

The blob is sealed by the key service under its own purpose, so a reasoning blob cannot pass as
a compaction, and an altered one is a 400 naming the item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from riposte import ids
from riposte.engine.item_models import Compaction
from riposte.engine.items import Item, item_type
from riposte.errors import InvalidRequestError
from riposte.sealing import Keyring, SealError

COMPACTION = "compaction"
_PURPOSE = "compaction"
SUMMARY_HEADER = "Summary of the conversation so far, written when it was compacted:"


@dataclass(frozen=True)
class CompactionSummary:
    summary: str
    # How many items right before the compaction item were kept verbatim.
    kept: int


def compaction_item(keyring: Keyring, summary: CompactionSummary) -> Item:
    """A new compaction item, as the output of `/responses/compact` or a compacting turn."""
    payload = orjson.dumps({"summary": summary.summary, "kept": summary.kept})
    return {"id": ids.new_id(Compaction.id_prefix), "type": COMPACTION,
            "encrypted_content": keyring.seal(payload, _PURPOSE)}


def summary_message(summary: str) -> Item:
    """What the backend reads in place of a compaction: the summary as a user message."""
    return {"type": "message", "role": "user", "content": f"{SUMMARY_HEADER}\n\n{summary}"}


@dataclass(frozen=True)
class Expanded:
    items: list[Item]
    # Whether a compaction item was found: it covers any history from before these items.
    compacted: bool


def expand_compactions(items: list[Item], keyring: Keyring, param: str = "input") -> Expanded:
    """The items as the backend should read them: the latest compaction item replaced by its
    summary, before the items it kept; older items dropped. Every compaction item must open."""
    opened = {index: _open(item, keyring, f"{param}[{index}]")
              for index, item in enumerate(items) if item_type(item) == COMPACTION}
    if not opened:
        return Expanded(items, compacted=False)
    last = max(opened)
    start = max(0, last - opened[last].kept)
    kept = [item for item in items[start:last] if item_type(item) != COMPACTION]
    return Expanded([summary_message(opened[last].summary), *kept, *items[last + 1:]], compacted=True)


def _open(item: Item, keyring: Keyring, param: str) -> CompactionSummary:
    sealed = item.get("encrypted_content")
    name = f"compaction item '{item['id']}'" if isinstance(item.get("id"), str) else "compaction item"
    try:
        payload: Any = orjson.loads(keyring.open(str(sealed), _PURPOSE))
        return CompactionSummary(summary=str(payload["summary"]), kept=max(0, int(payload["kept"])))
    except (SealError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"The encrypted_content of {name} could not be verified: {exc}. Send compaction items back exactly "
            "as this server returned them.",
            param=f"{param}.encrypted_content", code="invalid_encrypted_content",
        ) from exc


def kept_items(items: list[Item]) -> int:
    """How many items a compaction keeps verbatim: the last user message and everything after it
    (the exchange in progress), counted back from the end of the items it compacts."""
    last_user = max((index for index, item in enumerate(items)
                     if item_type(item) == "message" and item.get("role") == "user"), default=len(items))
    return len(items) - last_user
