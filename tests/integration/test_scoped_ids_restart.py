"""Replay-scoped ids after a restart: the counters start over, the database does not, and ids
minted before the restart are never minted again, however many (SQLite and PostgreSQL). Before,
the 1,001st id of a scope failed with a 500 after a restart."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from riposte import ids
from riposte.inference.scope import REPLAY_SCOPE_HEADER
from riposte.store import schema
from riposte.store.database import create_engine
from tests.conftest import ServerFactory

SCOPE = {REPLAY_SCOPE_HEADER: "tests/integration/test_scoped_ids_restart.py::restart"}


def upload(base_url: str) -> str:
    response = httpx.post(f"{base_url}/files", files={"file": ("a.txt", b"hello")}, data={"purpose": "assistants"},
                          headers=SCOPE, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def add_file_rows(database_url: str, file_ids: list[str]) -> None:
    """Rows as if the server had minted these ids before (uploading 1,000 files takes too long)."""

    async def insert() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(schema.files.insert(), [
                    {"id": file_id, "filename": "a.txt", "purpose": "assistants", "bytes": 5, "created_at": 0,
                     "expires_at": None} for file_id in file_ids])
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, insert()).result()


def test_ids_minted_before_a_restart_are_skipped_after_it(
    make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())
    first = make_server()
    before = [upload(first.base_url) for _ in range(6)]
    store = httpx.post(f"{first.base_url}/vector_stores", json={"name": "s"}, headers=SCOPE, timeout=30).json()["id"]
    first.stop()
    last = int(before[-1].removeprefix("file-"))
    add_file_rows(database_url, [f"file-{last + n}" for n in range(1, 1001)])

    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())  # what a new process starts with
    second = make_server()
    after = [upload(second.base_url) for _ in range(3)]
    new_store = httpx.post(f"{second.base_url}/vector_stores", json={"name": "t"}, headers=SCOPE, timeout=30)

    assert new_store.status_code == 200, new_store.text
    assert new_store.json()["id"] != store
    assert not set(after) & set(before) and len(set(after)) == 3
    assert [int(i.removeprefix("file-")) for i in after] == [last + 1000 + n for n in (1, 2, 3)]
