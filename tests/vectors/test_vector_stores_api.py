"""The Vector Stores API through the official SDK, on sqlite-vec and on pgvector.

Embeddings come from the scripted upstream (`fake/...`), so these tests need no model; the
semantic behaviour is covered by test_local_embeddings.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.pagination import SyncCursorPage
from openai.types import VectorStore, VectorStoreDeleted, VectorStoreSearchResponse
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch, VectorStoreFileDeleted

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream
from tests.vectors.conftest import ServerFactory
from tests.vectors.helpers import client, strict, upload, wait_for_file

FAKE_MODEL = {"embedding_model": "fake/embedder"}


def test_store_lifecycle_with_counts_and_statuses(vector_server: RunningServer,
                                                  embedding_upstream: ScriptedUpstream) -> None:
    sdk = client(vector_server)
    created = strict(VectorStore, sdk.vector_stores.with_raw_response.create(
        name="docs", metadata={"team": "a"}, expires_after={"anchor": "last_active_at", "days": 7},
        extra_body=FAKE_MODEL))
    assert created.id.startswith("vs_")
    assert (created.status, created.file_counts.total, created.usage_bytes) == ("completed", 0, 0)
    assert created.expires_at == created.last_active_at + 7 * 86400
    assert created.model_extra == {"description": None, "embedding_model": "fake/embedder",
                                   "embedding_dimension": None}

    file_id = upload(sdk, "a.txt", "alpha beta gamma")
    attached = strict(VectorStoreFile, sdk.vector_stores.files.with_raw_response.create(
        vector_store_id=created.id, file_id=file_id, attributes={"kind": "note", "n": 3, "ok": True}))
    assert attached.status in ("in_progress", "completed")
    done = wait_for_file(sdk, created.id, file_id)
    assert (done.status, done.last_error, done.attributes) == ("completed", None, {"kind": "note", "n": 3, "ok": True})
    assert done.usage_bytes > 0
    assert done.chunking_strategy is not None and done.chunking_strategy.type == "static"
    assert embedding_upstream.embedding_requests[0] == {"model": "embedder", "input": ["alpha beta gamma"],
                                                       "encoding_format": "float"}

    store = strict(VectorStore, sdk.vector_stores.with_raw_response.retrieve(created.id))
    assert (store.status, store.file_counts.completed, store.file_counts.total) == ("completed", 1, 1)
    assert store.usage_bytes == done.usage_bytes
    assert store.model_extra and store.model_extra["embedding_dimension"] == 8

    updated = sdk.vector_stores.update(created.id, name="renamed", expires_after=None)
    assert (updated.name, updated.expires_at, updated.metadata) == ("renamed", None, {"team": "a"})
    assert created.id in [s.id for s in sdk.vector_stores.list()]

    deleted = strict(VectorStoreDeleted, sdk.vector_stores.with_raw_response.delete(created.id))
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.retrieve(created.id)


def test_files_in_a_store(vector_server: RunningServer) -> None:
    sdk = client(vector_server)
    store = sdk.vector_stores.create(name="s", extra_body=FAKE_MODEL)
    good = upload(sdk, "good.md", "# Title\nsome text")
    image = upload(sdk, "photo.png", b"\x89PNG\r\n")
    for file_id in (good, image):
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id,
                                       chunking_strategy={"type": "static", "static": {
                                           "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}})
    failed = wait_for_file(sdk, store.id, image)
    assert failed.status == "failed"
    assert failed.last_error is not None and failed.last_error.code == "unsupported_file"
    assert "'.png'" in failed.last_error.message
    assert wait_for_file(sdk, store.id, good).status == "completed"

    page = sdk.vector_stores.files.list(vector_store_id=store.id)
    for raw in page.model_dump()["data"]:
        VectorStoreFile.model_validate(raw)
    assert {f.id for f in page} == {good, image}
    assert [f.id for f in sdk.vector_stores.files.list(vector_store_id=store.id, filter="failed")] == [image]
    assert sdk.vector_stores.retrieve(store.id).file_counts.failed == 1

    changed = sdk.vector_stores.files.update(file_id=good, vector_store_id=store.id, attributes={"v": 2})
    assert changed.attributes == {"v": 2}
    content = sdk.vector_stores.files.content(file_id=good, vector_store_id=store.id)
    assert [part.text for part in content] == ["# Title\nsome text"]

    removed = strict(VectorStoreFileDeleted, sdk.vector_stores.files.with_raw_response.delete(
        file_id=image, vector_store_id=store.id))
    assert removed.deleted
    sdk.files.delete(good)  # deleting the file takes it out of every store
    assert sdk.vector_stores.retrieve(store.id).file_counts.total == 0


def test_file_batches(vector_server: RunningServer) -> None:
    sdk = client(vector_server)
    store = sdk.vector_stores.create(name="s", extra_body=FAKE_MODEL)
    file_ids = [upload(sdk, f"{n}.txt", f"document number {n}") for n in range(3)]
    batch = strict(VectorStoreFileBatch, sdk.vector_stores.file_batches.with_raw_response.create(
        vector_store_id=store.id, file_ids=file_ids, attributes={"batch": True}))
    assert batch.id.startswith("batch_") and batch.file_counts.total == 3
    for file_id in file_ids:
        assert wait_for_file(sdk, store.id, file_id).attributes == {"batch": True}
    finished = sdk.vector_stores.file_batches.retrieve(batch_id=batch.id, vector_store_id=store.id)
    assert (finished.status, finished.file_counts.completed) == ("completed", 3)
    listed = sdk.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=store.id)
    assert {f.id for f in listed} == set(file_ids)

    per_file = sdk.vector_stores.file_batches.create(vector_store_id=store.id, files=[
        {"file_id": file_ids[0], "attributes": {"which": "first"}}])
    cancelled = sdk.vector_stores.file_batches.cancel(batch_id=per_file.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled"
    assert sdk.vector_stores.files.retrieve(file_id=file_ids[0], vector_store_id=store.id).status in (
        "cancelled", "completed")


def test_search_with_filters_and_modes(vector_server: RunningServer) -> None:
    sdk = client(vector_server)
    store = sdk.vector_stores.create(name="s", extra_body=FAKE_MODEL)
    for name, text, attributes in [("a.txt", "apples and pears", {"color": "red", "n": 1}),
                                   ("b.txt", "bananas", {"color": "yellow", "n": 2}),
                                   ("c.txt", "cherries and apples", {"color": "red", "n": 3})]:
        file_id = upload(sdk, name, text)
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, attributes=attributes)
        wait_for_file(sdk, store.id, file_id)

    raw = sdk.vector_stores.with_raw_response.search(vector_store_id=store.id, query="apples")
    body = raw.http_response.json()
    assert (body["object"], body["search_query"], body["has_more"]) == (
        "vector_store.search_results.page", ["apples"], False)
    for result in body["data"]:
        VectorStoreSearchResponse.model_validate(result)
    # Hash vectors: some cosine similarities are negative, below the default threshold of 0.
    assert body["data"] and all(result["score"] >= 0 for result in body["data"])

    red_late = sdk.vector_stores.search(vector_store_id=store.id, query="apples", filters={
        "type": "and", "filters": [{"type": "eq", "key": "color", "value": "red"},
                                   {"type": "gt", "key": "n", "value": 1}]}, extra_body={"search_mode": "hybrid"})
    assert [r.filename for r in red_late] == ["c.txt"]
    keyword = sdk.vector_stores.search(vector_store_id=store.id, query="apples", extra_body={"search_mode": "keyword"})
    assert {r.filename for r in keyword} == {"a.txt", "c.txt"}
    hybrid = sdk.vector_stores.search(vector_store_id=store.id, query=["apples", "bananas"], max_num_results=2,
                                      extra_body={"search_mode": "hybrid"})
    assert len(hybrid.data) == 2
    assert sdk.vector_stores.search(vector_store_id=store.id, query="apples",
                                    ranking_options={"score_threshold": 1.0}).data == []


@pytest.mark.parametrize(("path", "body", "status", "param"), [
    ("/vector_stores", {"name": "x", "unknown": 1}, 400, "unknown"),
    ("/vector_stores", {"chunking_strategy": {"type": "static", "static": {
        "max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}}}, 400,
     "chunking_strategy.static.max_chunk_size_tokens"),
    ("/vector_stores", {"embedding_model": "sentence-transformers/all-MiniLM-L6-v2", "embedding_dimension": 1536},
     400, "embedding_dimension"),
    ("/vector_stores", {"file_ids": ["file-missing"]}, 404, "file_ids[0]"),
    ("/vector_stores/vs_missing/search", {"query": "x"}, 404, "vector_store_id"),
    ("STORE/search", {"query": "x", "max_num_results": 51}, 400, "max_num_results"),
    ("STORE/search", {"query": "x", "rewrite_query": True}, 400, "rewrite_query"),
    ("STORE/search", {"query": "x", "filters": {"type": "gt", "key": "a", "value": True}}, 400, "filters.value"),
    ("STORE/search", {"query": "x", "filters": {"type": "and", "filters": []}}, 400, "filters.filters"),
    ("STORE/files", {"file_id": "file-missing"}, 404, "file_id"),
    ("STORE/files", {"file_id": "FILE", "attributes": {"k": [1]}}, 400, "attributes.k"),
    ("STORE/file_batches", {"file_ids": []}, 400, "file_ids"),
])
def test_bad_requests_name_the_parameter(vector_server: RunningServer, path: str, body: dict[str, Any],
                                         status: int, param: str) -> None:
    sdk = client(vector_server)
    store = sdk.vector_stores.create(name="s", extra_body=FAKE_MODEL)
    file_id = upload(sdk, "f.txt", "text")
    url = vector_server.base_url + path.replace("STORE", f"/vector_stores/{store.id}")
    raw = {k: (file_id if v == "FILE" else v) for k, v in body.items()}
    reply = httpx.post(url, json=raw)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["param"] == param


def test_an_embedding_model_outside_the_allow_list_is_a_404_at_creation(
    make_vector_server: ServerFactory, embedding_upstream: ScriptedUpstream
) -> None:
    # Model ids naming no provider go whole to the default one (as chat's do), so "unknown" is
    # what a provider's allow-list leaves out.
    server = make_vector_server(providers=[ProviderConfig(name="fake", base_url=embedding_upstream.base_url,
                                                          models=["embedder"])])
    reply = httpx.post(f"{server.base_url}/vector_stores", json={"embedding_model": "fake/other"})
    assert reply.status_code == 404, reply.text
    assert reply.json()["error"]["param"] == "embedding_model"


def test_lists_paginate(vector_server: RunningServer) -> None:
    sdk = client(vector_server)
    ids = [sdk.vector_stores.create(name=str(n), extra_body=FAKE_MODEL).id for n in range(3)]
    first: SyncCursorPage[VectorStore] = sdk.vector_stores.list(limit=2, order="asc")
    assert [s.id for s in first.data] == ids[:2] and first.has_more
    assert [s.id for s in sdk.vector_stores.list(limit=2, order="asc", after=ids[1]).data] == ids[2:]
    assert [s.id for s in sdk.vector_stores.list(order="desc", before=ids[0]).data] == ids[:0:-1]
    # `before` is the previous page: the stores just before the cursor, in the order asked for.
    previous = sdk.vector_stores.list(order="asc", before=ids[2], limit=1)
    assert ([s.id for s in previous.data], previous.has_more) == ([ids[1]], True)
    previous = sdk.vector_stores.list(order="desc", before=ids[0], limit=1)
    assert ([s.id for s in previous.data], previous.has_more) == ([ids[1]], True)
    assert [s.id for s in sdk.vector_stores.list(order="asc")] == ids
