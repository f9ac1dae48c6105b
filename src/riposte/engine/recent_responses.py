"""The `store: false` responses one WebSocket connection may continue.

OpenAI's WebSocket mode keeps the state of a connection's latest responses in memory, so that a
turn can continue one with `previous_response_id` although nothing was stored. This is that
memory: bounded (the oldest entry goes first), private to its connection (so to its caller's
project), and gone with it. Entries are kept as serialized JSON, as the store keeps them, so a
later turn never shares a mutable object with an earlier one.
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from riposte.store.responses import StoredResponse

DEFAULT_CAPACITY = 16


class RecentResponses:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def remember(self, state: StoredResponse) -> None:
        """Keep a response that ended: its object, full input items and the chat messages behind it."""
        if self._capacity <= 0:
            return
        response_id = state.response["id"]
        self._entries.pop(response_id, None)
        self._entries[response_id] = orjson.dumps(
            {"response": state.response, "input_items": state.input_items, "messages": state.messages})
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def recall(self, response_id: str) -> StoredResponse | None:
        raw = self._entries.get(response_id)
        if raw is None:
            return None
        self._entries.move_to_end(response_id)
        data = orjson.loads(raw)
        return StoredResponse(response=data["response"], input_items=data["input_items"], messages=data["messages"])

    def forget(self, response_id: str) -> None:
        self._entries.pop(response_id, None)

    def __len__(self) -> int:
        return len(self._entries)
