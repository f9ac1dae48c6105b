"""The pure pieces of web_search: url_citation scanning over any delta split, the tool's request
shape and echo, the folder corpus, tool-call recordings, and the grammar of its events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openai.types.responses import ResponseStreamEvent, WebSearchPreviewTool, WebSearchTool
from pydantic import TypeAdapter

from riposte.config import OfflineCorpusConfig, Settings, WebSearchSettings
from riposte.engine.citation_filter import CitationFilter
from riposte.errors import InvalidRequestError
from riposte.inference.tool_recording import parse_tool_recording, tool_recording_document
from riposte.testing.grammar import stream_grammar_errors
from riposte.tools.citations import CitableUrls, scan_url_citations, url_key
from riposte.tools.web_search import parse_web_search_tool, web_search_call_item
from riposte.websearch.corpus import FolderCorpus
from riposte.websearch.results import SearchQuery, WebResult, parse_results_content, results_content, within_domains
from riposte.websearch.service import describe

REFERENCE = Path(__file__).resolve().parents[1] / "recordings" / "reference"
TAVILY_RECORDING = REFERENCE / "42c357284497af596ae6c9341b0c189daa31e88b25d0381a985f24203b7a5a38.json"

SOURCES = {"https://a.example/page": "Page A", "https://b.example/": "Page B"}
TEXT = ("See [A](https://a.example/page?utm_source=openai) and https://b.example. Also [x](https://other.example/) "
        "and [A again](https://a.example/page#top).")


def citations_of(deltas: list[str], files: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    urls = CitableUrls()
    urls.add(SOURCES)
    citations = CitationFilter(files or {}, urls)
    pieces: list[str] = []
    found: list[dict[str, Any]] = []
    for delta in deltas:
        clean, annotations = citations.feed(delta)
        pieces.append(clean)
        found += annotations
    clean, annotations = citations.flush()
    return "".join(pieces) + clean, found + annotations


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 1000])
def test_links_to_sources_become_url_citations_whatever_the_delta_size(size: int) -> None:
    text, annotations = citations_of([TEXT[i:i + size] for i in range(0, len(TEXT), size)])

    assert text == TEXT  # links are never cut
    spans = [(a["url"], a["title"], TEXT[a["start_index"]:a["end_index"]]) for a in annotations]
    assert spans == [
        ("https://a.example/page?utm_source=openai", "Page A", "[A](https://a.example/page?utm_source=openai)"),
        ("https://b.example", "Page B", "https://b.example"),
        ("https://a.example/page#top", "Page A", "[A again](https://a.example/page#top)"),
    ]


def test_url_citations_index_the_text_after_file_markers_are_cut() -> None:
    text, annotations = citations_of(["Fact <|file-1|>. Web [A](https://a.example/page)."], {"file-1": "f.txt"})
    assert text == "Fact. Web [A](https://a.example/page)."
    assert [a["type"] for a in annotations] == ["file_citation", "url_citation"]
    assert text[annotations[1]["start_index"]:annotations[1]["end_index"]] == "[A](https://a.example/page)"


def test_a_bare_url_at_the_end_waits_for_the_end_of_the_text() -> None:
    urls = CitableUrls()
    urls.add(SOURCES)
    assert scan_url_citations("go to https://b.example", urls, final=False).annotations == []
    assert len(scan_url_citations("go to https://b.example", urls, final=True).annotations) == 1


def test_url_keys_ignore_tracking_fragments_and_trailing_slashes() -> None:
    assert url_key("HTTPS://A.example/x/?utm_source=openai&q=1#f") == url_key("https://a.example/x?q=1")
    assert url_key("https://a.example/x") != url_key("https://a.example/y")


def test_tool_parsing_fills_concrete_values_the_sdk_types_accept() -> None:
    config = parse_web_search_tool({"type": "web_search", "filters": {"allowed_domains": ["https://www.Python.org/"]},
                                    "user_location": {"type": "approximate", "country": "fr", "city": "Paris"}},
                                   "tools[0]")
    echoed = config.echoed()
    assert WebSearchTool.model_validate(echoed).search_context_size == "medium"
    assert echoed["filters"] == {"allowed_domains": ["python.org"]} and echoed["external_web_access"] is True
    assert echoed["user_location"]["country"] == "FR"
    assert config.query("q") == SearchQuery(query="q", allowed_domains=("python.org",), country="FR")
    preview = parse_web_search_tool({"type": "web_search_preview_2025_03_11"}, "tools[0]").echoed()
    assert WebSearchPreviewTool.model_validate(preview).user_location is not None
    assert "filters" not in preview and "external_web_access" not in preview


def test_preview_tools_need_an_approximate_location_type() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_web_search_tool({"type": "web_search_preview", "user_location": {"city": "Oslo"}}, "tools[2]")
    assert caught.value.param == "tools[2].user_location.type"


def test_a_plain_query_has_the_recorded_arguments_of_the_reference() -> None:
    assert SearchQuery(query="q").recorded_kwargs() == {"query": "q"}
    assert SearchQuery(query="q", context_size="low", allowed_domains=("a.org",)).recorded_kwargs() == {
        "query": "q", "search_context_size": "low", "allowed_domains": ["a.org"]}


def test_results_serialize_exactly_as_the_reference_tavily_recording() -> None:
    recording = parse_tool_recording(str(TAVILY_RECORDING), json.loads(TAVILY_RECORDING.read_text()))
    assert recording is not None and recording.provider == "tavily" and recording.kwargs == {
        "query": "Llama 4 Maverick model experts"}
    results = parse_results_content(recording.content)
    assert len(results) == 5
    raw = json.loads(recording.content)
    rebuilt = [WebResult(url=e["url"], title=e["title"], content=e["content"], score=e["score"]) for e in raw["top_k"]]
    assert results_content(raw["query"], rebuilt) == recording.content


def test_a_written_tool_recording_parses_back() -> None:
    document = tool_recording_document(test_id="t", provider="brave", tool_name="web_search", kwargs={"query": "q"},
                                       content='{"query": "q", "top_k": []}')
    recording = parse_tool_recording("x.json", document)
    assert recording is not None and (recording.test_id, recording.content) == ("t", '{"query": "q", "top_k": []}')


def test_domains_allow_their_subdomains_only() -> None:
    assert within_domains("https://docs.python.org/3/", ["python.org"])
    assert not within_domains("https://notpython.org/", ["python.org"])
    assert within_domains("https://anything.example/", [])


def test_folder_corpus_ranks_passages_and_skips_documents_without_url(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nurl: https://a.example/\ntitle: Alpha\n---\nCats purr.\n\nDogs bark loudly.")
    (tmp_path / "b.jsonl").write_text(json.dumps({"url": "https://b.example/", "title": "Beta",
                                                  "content": "Dogs and dogs and more dogs."}) + "\n")
    (tmp_path / "c.md").write_text("No front matter, so no URL: dogs.")
    corpus = FolderCorpus.load(tmp_path)

    hits = corpus.search("dogs")
    assert [hit.passage.url for hit in hits] == ["https://b.example/", "https://a.example/"]
    assert corpus.search("alpha")[0].passage.title == "Alpha"  # the title is searchable
    assert corpus.search("unicorns") == []


# ------------------------------------------------------------------ the grammar of web_search events

_EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def search_stream(phases: list[str], status: str = "completed") -> list[dict[str, Any]]:
    pending = {"id": "ws_1", **web_search_call_item("in_progress", "q", None)}
    done = {"id": "ws_1", **web_search_call_item(status, "q", [WebResult("https://a.example/", "A", "")])}
    base = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "output": [], "tools": [],
            "parallel_tool_calls": True, "tool_choice": "auto"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**base, "status": "in_progress"}},
        {"type": "response.in_progress", "response": {**base, "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": pending},
        *({"type": f"response.web_search_call.{phase}", "item_id": "ws_1", "output_index": 0} for phase in phases),
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": {**base, "status": "completed", "output": [done]}},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def test_a_well_formed_web_search_stream_passes_and_parses_as_sdk_events() -> None:
    events = search_stream(["in_progress", "searching", "completed"])
    assert stream_grammar_errors(events) == []
    assert [_EVENT.validate_python(event).type for event in events][3:6] == [
        "response.web_search_call.in_progress", "response.web_search_call.searching",
        "response.web_search_call.completed"]


@pytest.mark.parametrize(("phases", "status", "error"), [
    (["searching", "in_progress"], "failed", "comes after"),
    (["in_progress", "in_progress"], "failed", "comes after"),
    (["in_progress", "searching"], "completed", "no response.web_search_call.completed"),
    (["in_progress", "browsing"], "failed", "unknown phase"),
])
def test_web_search_phases_out_of_order_or_missing_are_caught(phases: list[str], status: str, error: str) -> None:
    errors = stream_grammar_errors(search_stream(phases, status))
    assert any(error in message for message in errors), errors


def test_a_web_search_event_for_another_kind_of_item_is_caught() -> None:
    events = search_stream(["in_progress", "searching", "completed"])
    events[3]["type"] = "response.file_search_call.in_progress"
    assert any("targets a 'web_search_call' item" in message for message in stream_grammar_errors(events))


def test_the_start_up_summary_says_which_provider_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    assert "no provider configured" in describe(WebSearchSettings())
    monkeypatch.setenv("BRAVE_API_KEY", "k")
    assert describe(WebSearchSettings(offline=OfflineCorpusConfig(directory=Path("c")))) == (
        "web search: brave; offline corpus: folder c")


def test_the_readme_web_search_settings_block_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if b.startswith("web_search:")]
    settings = Settings.model_validate(yaml.safe_load(block)).web_search
    assert settings.provider == "tavily" and settings.offline.directory == Path("corpus")
