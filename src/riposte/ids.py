"""Identifier allocation. Every id the server mints comes from here."""

from __future__ import annotations

import hashlib
import secrets
import threading
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

    def allocate(self, scope: str, kind: ScopedKind) -> str:
        with self._lock:
            key = (scope, kind)
            if key not in self._next:
                self._next[key] = int(hashlib.sha256(scope.encode()).hexdigest(), 16) % self._MODULUS
            self._next[key] += 1
            return f"{kind.value}{self._next[key]}"


_counters = _ScopedCounters()


def scoped_id(kind: ScopedKind) -> str:
    """Deterministic under a replay scope, random otherwise."""
    scope = replay_scope.get()
    if scope:
        return _counters.allocate(scope, kind)
    return f"{kind.value}{secrets.token_hex(12)}"


def call_id() -> str:
    return scoped_id(ScopedKind.TOOL_CALL)


def file_id() -> str:
    return scoped_id(ScopedKind.FILE)


def vector_store_id() -> str:
    return scoped_id(ScopedKind.VECTOR_STORE)


def file_batch_id() -> str:
    return scoped_id(ScopedKind.FILE_BATCH)
