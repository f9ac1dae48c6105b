"""Seed 004's documents, embedded with openai/text-embedding-3-small in replay mode.

Under the seed's replay scope, file and vector store ids come out as the seed system minted
them, every embeddings request matches a reference recording, and a search for the recorded
tool query returns the chunks in the recorded order, so the tool message built from them
matches the recorded chat request (whose scores and ids recorders normalise away).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from riposte import ids
from riposte.config import InferenceMode, ProviderConfig
from riposte.inference.recording import normalize_body
from riposte.tools.file_search import tool_result_message_content
from riposte.vectors.index import SearchHit
from tests.vectors.conftest import ServerFactory
from tests.vectors.helpers import SEED_FILES, client, wait_for_file

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "recordings" / "reference"
SEED_004 = REPO / "examples" / "recordings" / "004_fee50f062ba79347.json"
SCOPE = ("tests/integration/responses/test_file_search.py::"
         "test_response_file_search_streaming_events[openai_client-txt=openai/gpt-4o]")
TOOL_QUERY = "marketing updates October 2023"


def test_seed_004_documents_ingest_and_search_by_replay(make_vector_server: ServerFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The servers run in this process and share its id counters; this test needs the scope fresh.
    monkeypatch.setattr(ids, "_counters", ids._ScopedCounters())
    server = make_vector_server(inference_mode=InferenceMode.REPLAY, recordings_dir=REFERENCE,
                                providers=[ProviderConfig(name="openai", base_url="https://api.openai.com/v1")])
    sdk = client(server, default_headers={"X-Riposte-Replay-Scope": SCOPE})
    store = sdk.vector_stores.create(name="test_vector_store_with_filters", extra_body={
        "embedding_model": "openai/text-embedding-3-small", "embedding_dimension": 1536})
    assert store.id == "vs_284290576316"

    file_ids = []
    for name, text, attributes in SEED_FILES:
        file_id = sdk.files.create(file=(name, text.encode()), purpose="assistants").id
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, attributes=attributes)
        attached = wait_for_file(sdk, store.id, file_id)
        assert attached.status == "completed", attached.last_error
        file_ids.append(file_id)
    assert file_ids == ["file-284290576316", "file-284290576317", "file-284290576318", "file-284290576319"]

    results = sdk.vector_stores.search(vector_store_id=store.id, query=TOOL_QUERY).data
    assert [r.filename for r in results] == ["us_engineering_q2.txt", "us_marketing_q1.txt", "eu_marketing_q1.txt",
                                             "asia_sales_q3.txt"]

    hits = [SearchHit(file_id=r.file_id, filename=r.filename, chunk_index=0, text=r.content[0].text, score=r.score,
                      attributes=r.attributes or {}, token_count=0, metadata_token_count=0) for r in results]
    recorded = orjson.loads(SEED_004.read_bytes())["request"]["body"]
    ours = {**recorded, "messages": [*recorded["messages"][:2], {
        **recorded["messages"][2], "content": tool_result_message_content(TOOL_QUERY, hits)}]}
    assert normalize_body(ours) == normalize_body(recorded)
    assert [hit.file_id for hit in hits] == ["file-284290576317", "file-284290576316", "file-284290576318",
                                             "file-284290576319"]
