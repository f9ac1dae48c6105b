"""The offline web search provider over a vector store of Riposte's: files carrying `url` and
`title` attributes are the corpus, searched on both indexes, and cited as url_citation."""

from __future__ import annotations

import json

from riposte.config import ProviderConfig
from riposte.testing.grammar import assert_valid_stream
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply, tool_calls_reply
from tests.integration.sdk import stream_events
from tests.vectors.conftest import ServerFactory
from tests.vectors.helpers import client, upload, wait_for_file

RINGS_URL = "https://example.org/saturn"


def test_a_vector_store_serves_as_the_offline_web_corpus(
    make_vector_server: ServerFactory, embedding_upstream: ScriptedUpstream
) -> None:
    provider = ProviderConfig(name="fake", base_url=embedding_upstream.base_url, api_key="x")
    setup = make_vector_server(providers=[provider])
    sdk = client(setup)
    store = sdk.vector_stores.create(name="web", extra_body={"embedding_model": "fake/emb", "embedding_dimension": 8})
    for name, text, attributes in [
        ("saturn.txt", "Saturn has the most spectacular rings of all planets.",
         {"url": RINGS_URL, "title": "Saturn's rings"}),
        ("notes.txt", "Saturn notes without a URL are not web pages.", {}),
    ]:
        file_id = upload(sdk, name, text)
        sdk.vector_stores.files.create(vector_store_id=store.id, file_id=file_id, attributes=attributes)
        assert wait_for_file(sdk, store.id, file_id).status == "completed"

    server = make_vector_server(providers=[provider], web_search={"offline": {"vector_store_id": store.id}})
    embedding_upstream.enqueue(tool_calls_reply([("call_1", "web_search", '{"query": "saturn rings"}')]),
                               text_reply(f"The rings are spectacular ({RINGS_URL})."))
    events = stream_events(server, model="fake/m", input="Saturn's rings?",
                           tools=[{"type": "web_search", "external_web_access": False}],
                           include=["web_search_call.action.sources"])

    assert_valid_stream(events)
    call, message = events[-1].response.output
    assert [source.url for source in call.action.sources] == [RINGS_URL]
    tool_message = next(m for m in embedding_upstream.requests[-1]["messages"] if m["role"] == "tool")
    assert [entry["title"] for entry in json.loads(tool_message["content"])["top_k"]] == ["Saturn's rings"]
    [annotation] = message.content[0].annotations
    assert (annotation.type, annotation.url, annotation.title) == ("url_citation", RINGS_URL, "Saturn's rings")
