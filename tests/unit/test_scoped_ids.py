"""Ids that reach upstream request bodies are deterministic under a replay scope (SEED-SYSTEM.md §7)."""

from __future__ import annotations

import re

import pytest

from riposte import ids
from riposte.inference.scope import replay_scope

SEED_004_SCOPE = ("tests/integration/responses/test_file_search.py::"
                  "test_response_file_search_streaming_events[openai_client-txt=openai/gpt-4o]")


def test_seed_004_file_ids_come_out_identical_under_its_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    # Counters live in the process, and in-process test servers may have used this scope already.
    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())
    token = replay_scope.set(SEED_004_SCOPE)
    try:
        files = [ids.file_id() for _ in range(4)]
        store = ids.vector_store_id()
        batch = ids.file_batch_id()
        call = ids.call_id()
    finally:
        replay_scope.reset(token)
    assert files == ["file-284290576316", "file-284290576317", "file-284290576318", "file-284290576319"]
    assert (store, batch, call) == ("vs_284290576316", "batch_284290576316", "call_284290576316")


def test_each_scope_has_its_own_counters() -> None:
    first = replay_scope.set("tests/a.py::test_one")
    try:
        one = ids.file_id()
    finally:
        replay_scope.reset(first)
    second = replay_scope.set("tests/a.py::test_two")
    try:
        two = ids.file_id()
    finally:
        replay_scope.reset(second)
    assert one != two
    assert re.fullmatch(r"file-\d+", one) and re.fullmatch(r"file-\d+", two)


def test_outside_a_scope_ids_are_random() -> None:
    assert replay_scope.get() is None
    drawn = {ids.file_id() for _ in range(50)}
    assert len(drawn) == 50
    assert all(re.fullmatch(r"file-[0-9a-f]{24}", file_id) for file_id in drawn)
    assert re.fullmatch(r"vs_[0-9a-f]{24}", ids.vector_store_id())


async def test_after_a_restart_the_next_free_scoped_id_takes_a_few_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = "tests/restart.py::test_many_files"
    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())
    token = replay_scope.set(scope)
    try:
        before_restart = {ids.file_id() for _ in range(5000)}
        monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())  # the process restarted
        lookups: list[str] = []

        async def taken(candidate: str) -> bool:
            lookups.append(candidate)
            return candidate in before_restart

        fresh = await ids.unused_scoped_id(ids.ScopedKind.FILE, taken)
        following = await ids.unused_scoped_id(ids.ScopedKind.FILE, taken)
    finally:
        replay_scope.reset(token)
    assert fresh not in before_restart and following not in before_restart
    assert int(fresh.removeprefix("file-")) == max(int(i.removeprefix("file-")) for i in before_restart) + 1
    assert int(following.removeprefix("file-")) == int(fresh.removeprefix("file-")) + 1
    assert len(lookups) <= 2 * 13 + 2  # log2(5000) ≈ 12.3, where walking took 5,001


async def test_unscoped_ids_are_checked_once() -> None:
    lookups: list[str] = []

    async def taken(candidate: str) -> bool:
        lookups.append(candidate)
        return False

    found = await ids.unused_scoped_id(ids.ScopedKind.VECTOR_STORE, taken)
    assert lookups == [found] and found.startswith("vs_")
