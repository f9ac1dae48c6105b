"""Identifier allocation. Every id the server mints comes from here."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Awaitable, Callable
from enum import Enum

from riposte.inference.scope import replay_scope


def new_id(prefix: str) -> str:
    """An OpenAI-looking id: `prefix_` plus 48 hex characters."""
    return f"{prefix}_{secrets.token_hex(24)}"


def response_id() -> str:
    return new_id("resp")


def message_id() -> str:
    return new_id("msg")


def function_call_id() -> str:
    return new_id("fc")


def reasoning_id() -> str:
    return new_id("rs")


class ScopedKind(Enum):
    """Ids that end up inside upstream request bodies, so replay needs them to be reproducible.

    The values are the prefixes the seed system used; its recordings contain ids such as
    `file-284290576317`, which only match if they are minted the same way.
    """

    FILE = "file-"
    VECTOR_STORE = "vs_"
    FILE_BATCH = "batch_"
    TOOL_CALL = "call_"


class _ScopedCounters:
    """Per replay scope and kind: prefix + (sha256(scope) mod 10^12 + n), n = 1, 2, ...

    This is the seed system's scheme (SEED-SYSTEM.md §7). Counters live in the process, as
    they did there: a scope replayed twice against one server continues where it stopped.
    """

    _MODULUS = 10**12

    def __init__(self) -> None:
        self._next: dict[tuple[str, ScopedKind], int] = {}
        self._lock = threading.Lock()

    def allocate(self, scope: str, kind: ScopedKind) -> int:
        with self._lock:
            key = (scope, kind)
            if key not in self._next:
                self._next[key] = int(hashlib.sha256(scope.encode()).hexdigest(), 16) % self._MODULUS
            self._next[key] += 1
            return self._next[key]

    def move_past(self, scope: str, kind: ScopedKind, number: int) -> None:
        """The next allocation comes after `number` (never goes back)."""
        with self._lock:
            key = (scope, kind)
            self._next[key] = max(self._next.get(key, 0), number)


_counters = _ScopedCounters()


def scoped_id(kind: ScopedKind) -> str:
    """Deterministic under a replay scope, random otherwise."""
    scope = replay_scope.get()
    if scope:
        return f"{kind.value}{_counters.allocate(scope, kind)}"
    return f"{kind.value}{secrets.token_hex(12)}"


async def unused_scoped_id(kind: ScopedKind, taken: Callable[[str], Awaitable[bool]]) -> str:
    """A scoped id that no stored row holds.

    Counters restart with the process, but the database keeps the ids minted before a restart:
    under the same scope, a restarted server mints them again. Walking forward one id at a time
    cost one lookup per id ever minted in the scope (and gave up, with a 500, after 1,000). A
    galloping search finds the first free number past them in about 2·log2(n) lookups instead,
    and moves the counter there, so the ids that follow are free again.
    """
    candidate = scoped_id(kind)
    if not await taken(candidate):
        return candidate
    scope = replay_scope.get()
    if not scope:  # random ids: a clash is next to impossible, but a second draw settles it
        return await unused_scoped_id(kind, taken)
    number = await _first_free_after(int(candidate.removeprefix(kind.value)), kind, taken)
    _counters.move_past(scope, kind, number)
    return f"{kind.value}{number}"


async def _first_free_after(used: int, kind: ScopedKind, taken: Callable[[str], Awaitable[bool]]) -> int:
    """A free number above `used`: the first one, when the taken ones form a run from `used`."""
    step = 1
    while await taken(f"{kind.value}{used + step}"):
        used, step = used + step, step * 2
    low, high = used, used + step  # low is taken, high is free
    while high - low > 1:
        middle = (low + high) // 2
        if await taken(f"{kind.value}{middle}"):
            low = middle
        else:
            high = middle
    return high


def call_id() -> str:
    return scoped_id(ScopedKind.TOOL_CALL)


def file_id() -> str:
    return scoped_id(ScopedKind.FILE)


def vector_store_id() -> str:
    return scoped_id(ScopedKind.VECTOR_STORE)


def file_batch_id() -> str:
    return scoped_id(ScopedKind.FILE_BATCH)
