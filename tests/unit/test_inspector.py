"""The inspector's pure parts: views, cost, the sealed session, when it is served at all."""

from __future__ import annotations

import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from riposte.config import Settings
from riposte.sealing import Keyring, new_key
from riposte.ui import views
from riposte.ui.access import inspector_open
from riposte.ui.cost import cost_text, response_cost
from riposte.ui.routes import install_inspector
from riposte.ui.session import opened_session, sealed_session
from riposte.ui.settings import ModelPrice

README = Path(__file__).resolve().parents[2] / "README.md"


def _search_steps(file_id: str) -> list[dict[str, Any]]:
    source = {"file_id": file_id, "filename": "saturn.txt", "chunk_index": 3, "score": 0.71, "text": "rings",
              "vector_store_id": "vs_1"}
    return [
        {"kind": "upstream_call", "request": {"model": "m", "messages": [{"role": "user", "content": "q"}]},
         "answer": {"finish_reason": "tool_calls", "message": {"tool_calls": [
             {"id": "c1", "function": {"name": "knowledge_search", "arguments": "{}"}}]}}},
        {"kind": "tool_call", "name": "knowledge_search", "tool_type": "file_search_call", "sources": [source]},
        {"kind": "upstream_call", "request": {"model": "m"}, "error": {"message": "boom", "status": 502}},
    ]


def test_a_file_citation_links_to_the_chunk_the_turn_found() -> None:
    text = "Saturn has rings. Done."
    citation = {"type": "file_citation", "file_id": "file-a", "filename": "saturn.txt", "index": text.index(". Done")}
    response = {"id": "resp_1", "model": "x", "status": "completed", "output": [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": text, "annotations": [citation]}]}]}
    shaped = views.timeline(response, [], _search_steps("file-a"), {})
    [part] = shaped["output"][0]["parts"]
    [citation] = part["citations"]
    assert citation["href"] == "#source-2-1"
    assert [segment["text"] for segment in part["segments"]] == ["Saturn has rings", ". Done."]
    assert shaped["steps"][1]["sources"][0]["anchor"] == "source-2-1"
    assert shaped["steps"][2]["error"]["message"] == "boom"
    assert shaped["steps"][0]["tool_calls"] == [{"name": "knowledge_search", "id": "c1", "arguments": "{}"}]


def test_a_citation_of_a_file_no_search_found_links_to_the_file() -> None:
    response = {"id": "resp_1", "output": [{"type": "message", "content": [{"type": "output_text", "text": "x",
                "annotations": [{"type": "file_citation", "file_id": "file-b", "index": 1}]}]}]}
    [citation] = views.timeline(response, [], None, {})["output"][0]["parts"][0]["citations"]
    assert citation["href"] is None and citation["file_href"] == "/ui/files/file-b"


def test_cost_uses_the_price_table_and_says_unknown_without_a_price() -> None:
    usage = {"input_tokens": 1_000_000, "input_tokens_details": {"cached_tokens": 400_000}, "output_tokens": 100_000}
    prices = {"m": ModelPrice(input=2.0, cached_input=1.0, output=10.0)}
    assert response_cost("m", usage, prices) == pytest.approx(0.6 * 2 + 0.4 * 1 + 0.1 * 10)
    assert response_cost("other", usage, prices) is None
    assert cost_text(None) == "unknown"
    assert response_cost("m", usage, {"m": ModelPrice(input=2.0, output=10.0)}) == pytest.approx(2 + 1)


def test_compared_bodies_mark_the_fields_that_differ() -> None:
    rows = views.compared({"model": "a", "messages": [{"role": "user", "content": "hi"}]},
                          {"model": "a", "messages": [{"role": "user", "content": "hello"}], "seed": 1})
    differing = {row["path"] for row in rows if row["differs"]}
    assert differing == {"messages[0].content", "seed"}


def test_the_session_cookie_opens_only_unaltered_unexpired_and_with_the_same_keys() -> None:
    keyring = Keyring([new_key()])
    cookie = sealed_session(keyring, "sk-riposte-abc", 60)
    opened = opened_session(keyring, cookie)
    assert opened is not None and opened.api_key == "sk-riposte-abc"
    assert "sk-riposte-abc" not in cookie
    assert opened_session(Keyring([new_key()]), cookie) is None
    assert opened_session(keyring, cookie[:-4] + "AAAA") is None
    assert opened_session(keyring, sealed_session(keyring, "sk-riposte-abc", -1)) is None
    assert opened_session(keyring, None) is None


class _Auth:
    def __init__(self, on: bool) -> None:
        self.on = on

    async def enabled(self) -> bool:
        return self.on


@pytest.mark.parametrize(("host", "auth_on", "enabled", "served"), [
    ("127.0.0.1", False, True, True),
    ("10.1.2.3", False, True, False),  # open to anyone who reaches the port: not served
    ("10.1.2.3", True, True, True),
    ("127.0.0.1", True, False, False),
])
async def test_when_the_inspector_is_served(host: str, auth_on: bool, enabled: bool, served: bool) -> None:
    settings = Settings(host=host, inspector={"enabled": enabled})
    assert await inspector_open(SimpleNamespace(settings=settings, auth=_Auth(auth_on))) is served  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "auth_on", "enabled", "served"), [
    ("127.0.0.1", False, True, True),
    ("10.1.2.3", False, True, False),
    ("127.0.0.1", False, False, False),
])
async def test_the_static_assets_exist_only_when_the_pages_do(host: str, auth_on: bool, enabled: bool,
                                                               served: bool) -> None:
    app = FastAPI()
    install_inspector(app)
    app.state.services = SimpleNamespace(settings=Settings(host=host, inspector={"enabled": enabled}),
                                         auth=_Auth(auth_on))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for asset in ("inspector.css", "inspector.js", "htmx.min.js"):
            answer = await client.get(f"/ui/static/{asset}")
            assert answer.status_code == (200 if served else 404), asset
            assert ("Not Found" not in answer.text) is served


def test_the_readme_inspector_settings_block_is_valid() -> None:
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if b.startswith("inspector:")]
    settings = Settings.model_validate(yaml.safe_load(block))
    assert settings.inspector.prices["openai/gpt-4o-mini"].cached_input == 0.075


def test_list_rows_preview_the_answer_and_the_error() -> None:
    row = views.response_row({"id": "r", "model": "m", "status": "failed", "created_at": time.time(), "output": [],
                              "error": {"message": "upstream down"}}, {})
    assert row["error"] == "upstream down" and row["cost"] == "unknown"


def test_a_later_call_of_a_turn_keeps_only_the_messages_it_added_and_is_shown_whole() -> None:
    from riposte.engine.stream_state import CallResult
    from riposte.engine.turn_trace import TurnTrace, full_requests

    trace = TurnTrace({"id": "resp_1"})
    first = [{"role": "user", "content": "q"}]
    second = [*first, {"role": "assistant", "content": "", "tool_calls": []}, {"role": "tool", "content": "r"}]
    done = CallResult(text="", refusal=None, reasoning="", tool_calls=[], finish_reason="stop", usage=None)
    trace.upstream_started().answered({"model": "m", "messages": first}, done, None)
    trace.upstream_started().failed({"model": "m", "messages": second}, RuntimeError("cut"))
    assert trace.steps[1]["request"]["messages"] == second[1:] and trace.steps[1]["request_shared_messages"] == 1
    assert [body["messages"] for body in full_requests(trace.steps)] == [first, second]
    shown = views.timeline({"id": "resp_1", "output": []}, [], trace.steps, {})["steps"]
    assert shown[1]["message_count"] == 3 and shown[1]["error"]["message"] == "cut"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_inspector_colours_meet_wcag_aa() -> None:
    css = (Path(views.__file__).parent / "static" / "inspector.css").read_text()
    colour = dict(re.findall(r"--([\w-]+): (#[0-9a-fA-F]{6})", css))
    text_pairs = [("fg", "bg"), ("muted", "bg"), ("link", "bg"), ("fg", "panel"), ("muted", "panel"),
                  ("link", "panel"), ("bad", "bad-bg"), ("good", "good-bg"), ("warn", "warn-bg"), ("fg", "mark"),
                  ("bad", "bg")]
    for fg, bg in text_pairs:
        assert _contrast(colour[fg], colour[bg]) >= 4.5, (fg, bg)
    assert _contrast("#ffffff", "#17202e") >= 4.5  # the header
    assert _contrast("#ffffff", colour["link"]) >= 4.5  # primary buttons
    assert _contrast(colour["focus"], colour["bg"]) >= 3.0  # the focus outline (non-text)


def test_the_partial_output_of_a_running_turn_is_shown_only_while_it_runs() -> None:
    running = views.timeline({"id": "r", "status": "in_progress", "output": []}, [], [], {},
                             streaming={"text": "Hal", "reasoning": ""})
    assert running["streaming"] == {"text": "Hal", "reasoning": ""} and running["running"]
    done = views.timeline({"id": "r", "status": "completed", "output": []}, [], [], {},
                          streaming={"text": "Hal", "reasoning": ""})
    assert done["streaming"] is None and not done["running"]


def test_a_continued_turn_names_the_inherited_history_after_its_instructions() -> None:
    from riposte.engine.stream_state import CallResult
    from riposte.engine.turn_trace import TurnTrace, full_requests, history_reference

    history = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    sent = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "q2"}]
    trace = TurnTrace({"id": "resp_2"}, ("resp_1", history))
    done = CallResult(text="a2", refusal=None, reasoning="", tool_calls=[], finish_reason="stop", usage=None)
    trace.upstream_started().answered({"model": "m", "messages": sent}, done, None)
    [step] = trace.steps
    assert step["request"]["messages"] == [sent[0], sent[-1]] and history_reference(trace.steps) == "resp_1"
    assert full_requests(trace.steps, history)[0]["messages"] == sent
    placeholder = full_requests(trace.steps, None)[0]["messages"]
    assert [m["role"] for m in placeholder] == ["system", "(history)", "user"]
    # A history the call did not send as it was stored is kept whole.
    changed = TurnTrace({"id": "resp_3"}, ("resp_1", [{"role": "user", "content": "other"}]))
    changed.upstream_started().answered({"model": "m", "messages": sent}, done, None)
    assert changed.steps[0]["request"]["messages"] == sent and "request_history" not in changed.steps[0]
