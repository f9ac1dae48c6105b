"""`include: ["reasoning.encrypted_content"]`: reasoning items sealed for clients that keep no state.

With `store: false` a client (the Agents SDK, pydantic-ai, the Vercel AI SDK, Codex) carries the
reasoning itself and sends it back as input. The sealed blob holds the item's reasoning text and
summary exactly as the model produced them; opening it restores them, so the reasoning goes
upstream (`reasoning_content`) byte for byte as it came.
"""

from __future__ import annotations

from typing import Any

import orjson

from riposte.engine.items import Item, item_type
from riposte.engine.stream_state import ReasoningSealer
from riposte.errors import InvalidRequestError
from riposte.sealing import Keyring, SealError

ENCRYPTED_REASONING = "reasoning.encrypted_content"
_PURPOSE = "reasoning"


def reasoning_sealer(keyring: Keyring) -> ReasoningSealer:
    """The stream's sealer: a finished reasoning item to its `encrypted_content`."""

    def seal(item: dict[str, Any]) -> str:
        payload = {"content": item.get("content") or [], "summary": item.get("summary") or []}
        return keyring.seal(orjson.dumps(payload), _PURPOSE)

    return seal


def with_sealed_reasoning(output: list[Item], keyring: Keyring) -> list[Item]:
    """A stored response's output with each reasoning item sealed, as `include` asks on retrieval
    (the item keeps its text: the response is stored, so the client may see it)."""
    seal = reasoning_sealer(keyring)
    return [{**item, "encrypted_content": seal(item)}
            if item_type(item) == "reasoning" and not item.get("encrypted_content") else item for item in output]


def open_sealed_reasoning(items: list[Item], keyring: Keyring, param: str = "input") -> list[Item]:
    """The items with every sealed reasoning item's text and summary restored from its blob.

    A blob that does not open (altered, foreign, or sealed under a key no longer kept) is a 400
    naming the item, never reasoning silently dropped."""
    return [_opened(item, keyring, f"{param}[{index}]") for index, item in enumerate(items)]


def _opened(item: Item, keyring: Keyring, param: str) -> Item:
    if item_type(item) != "reasoning" or item.get("encrypted_content") is None:
        return item
    sealed = item["encrypted_content"]
    name = f"reasoning item '{item['id']}'" if isinstance(item.get("id"), str) else "reasoning item"
    if not isinstance(sealed, str):
        raise InvalidRequestError(f"The {name} has an 'encrypted_content' that is not a string.",
                                  param=f"{param}.encrypted_content")
    try:
        payload = orjson.loads(keyring.open(sealed, _PURPOSE))
    except SealError as exc:
        raise InvalidRequestError(
            f"The encrypted_content of {name} could not be verified: {exc}. Send reasoning items back exactly "
            "as this server returned them.",
            param=f"{param}.encrypted_content", code="invalid_encrypted_content",
        ) from exc
    return {**item, "content": payload["content"], "summary": payload["summary"]}
