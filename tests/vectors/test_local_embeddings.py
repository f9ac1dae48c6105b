"""The default local model (all-MiniLM-L6-v2, no recordings, no network): real semantic search,
and attribute filters by region, category, date range and compound and/or returning exactly the
right files, on both indexes."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from riposte.testing.server import RunningServer
from tests.vectors.conftest import ServerFactory
from tests.vectors.helpers import SEED_FILES, client, upload, wait_for_file

Q1_START, Q2_END = 1672531200, 1688169599


@pytest.fixture
def seeded(make_vector_server: ServerFactory) -> tuple[openai.OpenAI, str]:
    server: RunningServer = make_vector_server()
    sdk = client(server)
    store = sdk.vector_stores.create(name="local_filters")
    assert store.model_extra and store.model_extra["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    batch = sdk.vector_stores.file_batches.create(vector_store_id=store.id, files=[
        {"file_id": upload(sdk, name, text), "attributes": attributes} for name, text, attributes in SEED_FILES])
    for attached in sdk.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=store.id):
        done = wait_for_file(sdk, store.id, attached.id)
        assert done.status == "completed", done.last_error
    return sdk, store.id


def filenames(sdk: openai.OpenAI, store_id: str, query: str, filters: dict[str, Any] | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"filters": filters} if filters is not None else {}
    return [hit.filename for hit in sdk.vector_stores.search(vector_store_id=store_id, query=query, **kwargs)]


def test_semantic_search_ranks_the_closest_document_first(seeded: tuple[openai.OpenAI, str]) -> None:
    sdk, store_id = seeded
    assert filenames(sdk, store_id, "advertising results in Europe")[0] == "eu_marketing_q1.txt"
    assert filenames(sdk, store_id, "new features shipped by engineering")[0] == "us_engineering_q2.txt"


@pytest.mark.parametrize(("filters", "expected"), [
    ({"type": "eq", "key": "region", "value": "us"}, ["us_engineering_q2.txt", "us_marketing_q1.txt"]),
    ({"type": "eq", "key": "category", "value": "marketing"}, ["eu_marketing_q1.txt", "us_marketing_q1.txt"]),
    ({"type": "and", "filters": [{"type": "gte", "key": "date", "value": Q1_START},
                                 {"type": "lte", "key": "date", "value": Q2_END}]},
     ["eu_marketing_q1.txt", "us_engineering_q2.txt", "us_marketing_q1.txt"]),
    ({"type": "and", "filters": [{"type": "eq", "key": "region", "value": "us"},
                                 {"type": "eq", "key": "category", "value": "engineering"}]},
     ["us_engineering_q2.txt"]),
    ({"type": "or", "filters": [{"type": "eq", "key": "category", "value": "sales"},
                                {"type": "eq", "key": "region", "value": "eu"}]},
     ["asia_sales_q3.txt", "eu_marketing_q1.txt"]),
    ({"type": "and", "filters": [{"type": "ne", "key": "region", "value": "asia"},
                                 {"type": "or", "filters": [{"type": "gt", "key": "date", "value": Q1_START},
                                                            {"type": "eq", "key": "region", "value": "eu"}]}]},
     ["eu_marketing_q1.txt", "us_engineering_q2.txt"]),
])
def test_filters_return_exactly_the_right_files(seeded: tuple[openai.OpenAI, str], filters: dict[str, Any],
                                                expected: list[str]) -> None:
    sdk, store_id = seeded
    assert sorted(filenames(sdk, store_id, "quarterly business updates", filters)) == expected
