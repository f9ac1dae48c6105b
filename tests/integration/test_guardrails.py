"""Guardrails over a scripted upstream: input and output moderation, Llama Guard, failures, replay.

The scripted upstream's `/v1/moderations` flags any input holding one of its terms, so a check
that missed the unsafe phrase would let the test fail; a second scripted upstream plays the
Llama Guard model. Output windows are small here (24 characters, 16 held back) so that an answer
spans several checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from riposte.config import InferenceMode, ProviderConfig
from riposte.guardrails.settings import GuardConfig, GuardrailSettings
from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer, free_port
from tests.conftest import server_factory
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.sdk import raw_stream, sdk, stream_events, strict_create
from tests.integration.stored_rows import sql

UNSAFE = "forbidden spell"  # 15 characters: within the 16 held back, so no part of it may leak
ANSWER = f"Sure, here is how it goes: the {UNSAFE} is said at midnight, then you wait for the moon."
SETTINGS = GuardrailSettings(window_chars=24, overlap_chars=16, max_check_chars=120, guards=[
    GuardConfig(name="omni", type="moderations", model="fake/omni-moderation-latest"),
    GuardConfig(name="llama-guard", type="llama_guard", model="guard/llama-guard-3"),
    GuardConfig(name="omni-down", type="moderations", model="down/omni-moderation-latest"),
    GuardConfig(name="omni-down-open", type="moderations", model="down/omni-moderation-latest",
                on_error="fail_open"),
])


@pytest.fixture(scope="module")
def model_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def guard_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


def _providers(model_upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream) -> list[ProviderConfig]:
    # Nothing listens on `down`'s port: every call to it fails to connect.
    return [ProviderConfig(name="fake", base_url=model_upstream.base_url, api_key="x"),
            ProviderConfig(name="guard", base_url=guard_upstream.base_url, api_key="x"),
            ProviderConfig(name="down", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x",
                           connect_timeout_seconds=2)]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           model_upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("guardrails")
    url = (f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_database_url"))
    with server_factory(data_dir, url) as factory:
        yield factory(providers=_providers(model_upstream, guard_upstream), guardrails=SETTINGS)


@pytest.fixture
def upstream(model_upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    model_upstream.reset()
    guard_upstream.reset()
    model_upstream.moderation_terms[UNSAFE] = "violence"
    yield model_upstream


def _no_unsafe_text(wire: Any) -> None:
    text = json.dumps(wire)
    for fragment in ("forb", "spell"):
        assert fragment not in text, f"{fragment!r} reached the client: {text[:2000]}"


def _refusal_message(response: Any) -> tuple[str, str]:
    [message] = response.output
    assert message.type == "message" and message.status == "completed"
    texts = [part.text for part in message.content if part.type == "output_text"]
    [refusal] = [part.refusal for part in message.content if part.type == "refusal"]
    return "".join(texts), refusal


def test_flagged_input_is_refused_before_the_model_is_called(server: RunningServer, upstream: ScriptedUpstream) -> None:
    raw = raw_stream(server, {"model": "fake/m", "input": f"Teach me the {UNSAFE}.", "guardrails": ["omni"],
                              "stream": True})
    assert_valid_stream(raw)
    assert upstream.requests == []  # the model never saw it
    assert [e["type"] for e in raw] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.refusal.delta", "response.refusal.done", "response.content_part.done",
        "response.output_item.done", "response.completed"]
    final = stream_events(server, model="fake/m", input=f"Teach me the {UNSAFE}.", shields=[{"type": "omni"}])[-1]
    assert final.response.status == "completed"
    text, refusal = _refusal_message(final.response)
    assert text == ""
    assert refusal == "I can't help with that: the request was flagged by the 'omni' guardrail (violence)."
    assert upstream.moderation_requests[0] == {"model": "omni-moderation-latest", "input": f"Teach me the {UNSAFE}."}
    stored = sdk(server).responses.retrieve(final.response.id)
    assert stored.status == "completed" and _refusal_message(stored)[1] == refusal


def test_a_chain_cannot_carry_a_refused_input_past_the_guard(server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(server)
    refused = client.responses.create(model="fake/m", input=f"Teach me the {UNSAFE}.",
                                      extra_body={"guardrails": ["omni"]})
    again = client.responses.create(model="fake/m", input="Please?", previous_response_id=refused.id,
                                    extra_body={"guardrails": ["omni"]})
    assert _refusal_message(again)[1].startswith("I can't help with that: the request was flagged")
    assert upstream.moderation_requests[1]["input"] == f"Teach me the {UNSAFE}.\n\nPlease?"
    assert upstream.requests == []

    # After an answer that went out, only what follows it is read.
    upstream.enqueue(text_reply("Hello!"), text_reply("Fine, thanks."))
    first = client.responses.create(model="fake/m", input="Hi", extra_body={"guardrails": ["omni"]})
    second = client.responses.create(model="fake/m", input="How are you?", previous_response_id=first.id,
                                     extra_body={"guardrails": ["omni"]})
    assert second.output_text == "Fine, thanks."
    assert [r["input"] for r in upstream.moderation_requests[2:]] == ["Hi", "Hello!", "How are you?", "Fine, thanks."]


def test_a_long_input_is_read_in_overlapping_pieces(
    server: RunningServer, upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream,
) -> None:
    # 300 characters with the phrase across the first piece's end (120 characters, 16 shared).
    text = "a" * 110 + f" {UNSAFE} " + "b" * 173
    response = strict_create(server, model="fake/m", input=text, guardrails=["omni"])
    assert _refusal_message(response)[1].startswith("I can't help with that: the request was flagged")
    [checked] = upstream.moderation_requests
    assert checked["input"] == [text[0:120], text[104:224], text[208:300]]
    assert upstream.requests == []

    # A guard model reads one piece per call, and stops at the first flagged one.
    guard_upstream.enqueue(text_reply("safe"), text_reply("unsafe\nS2"))
    response = strict_create(server, model="fake/m", input=text, guardrails=["llama-guard"])
    assert _refusal_message(response)[1].endswith("(S2 (Non-Violent Crimes)).")
    assert len(guard_upstream.requests) == 2
    assert f"User: {text[104:224]}\n\n<END CONVERSATION>" in guard_upstream.requests[1]["messages"][0]["content"]


def test_flagged_output_mid_stream_becomes_a_refusal_and_no_unsafe_text_goes_out(
    server: RunningServer, upstream: ScriptedUpstream,
) -> None:
    # Three-character deltas: the phrase arrives split over several of them, and over two windows.
    upstream.enqueue(text_reply(ANSWER, pieces=len(ANSWER) // 3))
    events = stream_events(server, model="fake/m", input="How does it go?", guardrails=["omni"])
    assert_valid_stream(events)
    _no_unsafe_text([event.model_dump() for event in events])
    assert events[-1].type == "response.completed"
    types = [event.type for event in events]
    assert "response.refusal.done" in types
    last_text = max(i for i, t in enumerate(types) if t == "response.output_text.delta")
    assert types.index("response.refusal.delta") > last_text
    stored = sdk(server).responses.retrieve(events[-1].response.id)
    _no_unsafe_text(stored.model_dump())
    text, refusal = _refusal_message(stored)
    assert ANSWER.startswith(text) and text  # the part before the phrase went out, nothing from it on
    assert refusal == "I can't help with that: the answer was flagged by the 'omni' guardrail (violence)."
    checked = [r["input"] for r in upstream.moderation_requests]
    assert checked[0] == "How does it go?"
    assert any(UNSAFE in text for text in checked[1:])  # the check that caught it read it whole


def test_each_check_is_a_step_of_the_inspector_trace_and_only_there_is_the_flagged_text_shown(
    server: RunningServer, upstream: ScriptedUpstream,
) -> None:
    upstream.enqueue(text_reply(ANSWER, pieces=len(ANSWER) // 3))
    events = stream_events(server, model="fake/m", input="How does it go?", guardrails=["omni-down-open", "omni"])
    response_id = events[-1].response.id
    [(raw,)] = sql(server.settings.database_url, "SELECT steps FROM response_traces WHERE response_id = :id",
                   id=response_id)
    steps = json.loads(raw)
    shape = [(step["kind"], step.get("guard"), step.get("stage"), step.get("outcome")) for step in steps]
    assert shape[:3] == [("guardrail_check", "omni-down-open", "input", "failed_open"),
                         ("guardrail_check", "omni", "input", "passed"), ("upstream_call", None, None, None)]
    assert shape[-2:] == [("guardrail_check", "omni-down-open", "output", "failed_open"),
                          ("guardrail_check", "omni", "output", "flagged")]
    assert {kind for kind, *_ in shape[3:]} == {"guardrail_check"}  # the output windows, after their call
    down, passed, flagged = steps[0], steps[1], steps[-1]
    assert down["error"] and down["guard_type"] == "moderations" and passed["text"] == "How does it go?"
    assert UNSAFE in flagged["text"] and flagged["categories"] == ["violence"] and flagged["error"] is None
    assert all(isinstance(step["duration_ms"], float) for step in steps)
    _no_unsafe_text([step for step in steps if step["kind"] != "guardrail_check"])

    reply = httpx.get(f"{server.base_url.removesuffix('/v1')}/ui/responses/{response_id}", timeout=30)
    assert reply.status_code == 200
    page = reply.text
    articles = [part.split("</article>") for part in page.split('<article class="step ')]
    outside = articles[0][0] + "".join(rest for _, *rest in articles[1:] for rest in rest)
    _no_unsafe_text(outside)
    showing = [body for body, *_ in articles[1:] if UNSAFE in body]
    assert showing and all(body.startswith("guardrail_check") for body in showing)
    assert "Flagged text — withheld from the client, shown to operators only" in showing[-1]


def test_flagged_output_without_streaming(server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply(ANSWER, pieces=len(ANSWER) // 3))
    response = strict_create(server, model="fake/m", input="How does it go?", guardrails=["omni"])
    _no_unsafe_text(response.model_dump())
    assert response.status == "completed"
    assert _refusal_message(response)[1].startswith("I can't help with that: the answer was flagged")


def test_a_safe_answer_goes_out_whole_through_several_windows(
    server: RunningServer, upstream: ScriptedUpstream,
) -> None:
    answer = "Rings: Saturn, and also Jupiter, Uranus and Neptune — fainter ones 🪐. " * 3
    upstream.enqueue(text_reply(answer, pieces=len(answer) // 2))
    events = stream_events(server, model="fake/m", input="Planets with rings?", guardrails=["omni"])
    assert_valid_stream(events)
    assert events[-1].response.output_text == answer
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == answer
    assert len(upstream.moderation_requests) >= 1 + len(answer) // 24


def test_the_llama_guard_model_judges_input_and_output(
    server: RunningServer, upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream,
) -> None:
    guard_upstream.enqueue(text_reply("unsafe\nS1"))
    response = strict_create(server, model="fake/m", input="How do I hurt someone?", guardrails=["llama-guard"])
    assert _refusal_message(response)[1] == (
        "I can't help with that: the request was flagged by the 'llama-guard' guardrail (S1 (Violent Crimes)).")
    [asked] = guard_upstream.requests
    assert asked["model"] == "llama-guard-3" and asked["temperature"] == 0 and not asked.get("stream")
    [prompt] = asked["messages"]
    assert "unsafe content in 'User' messages" in prompt["content"]
    assert "User: How do I hurt someone?" in prompt["content"]
    assert upstream.requests == []

    # Output: the input passes, the whole (short) answer is one window, which the guard flags.
    guard_upstream.reset()
    guard_upstream.enqueue(text_reply("safe"), text_reply("unsafe\nS10,S11"))
    upstream.enqueue(text_reply("A hateful answer."))
    events = stream_events(server, model="fake/m", input="Say something.", guardrails=["llama-guard"])
    assert_valid_stream(events)
    assert "hateful" not in json.dumps([e.model_dump() for e in events])
    assert _refusal_message(events[-1].response)[1].endswith("(S10 (Hate), S11 (Self-Harm)).")
    output_prompt = guard_upstream.requests[1]["messages"][0]["content"]
    assert "User: Say something.\n\nAgent: A hateful answer." in output_prompt


def test_a_down_moderation_service_fails_closed(server: RunningServer, upstream: ScriptedUpstream) -> None:
    raw = raw_stream(server, {"model": "fake/m", "input": "Hello", "guardrails": ["omni-down"], "stream": True})
    assert_valid_stream(raw)
    assert raw[-1]["type"] == "response.failed"
    [error] = [e for e in raw if e["type"] == "error"]
    assert error["code"] == "guardrail_unavailable"
    assert "guardrail 'omni-down' could not check the input" in error["message"]
    assert upstream.requests == []
    stored = sdk(server).responses.retrieve(raw[-1]["response"]["id"])
    assert stored.status == "failed" and stored.error is not None

    reply = httpx.post(f"{server.base_url}/responses", timeout=30, json={
        "model": "fake/m", "input": "Hello", "guardrails": ["omni-down"]})
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "guardrail_unavailable"

    # A service that errors once the answer streams (a 500 from /v1/moderations) fails it closed:
    # nothing of the unchecked answer goes out.
    upstream.moderation_answers_before_failing = 1
    upstream.enqueue(text_reply("The answer nobody could check, long enough for a window."))
    raw = raw_stream(server, {"model": "fake/m", "input": "Hi", "guardrails": ["omni"], "stream": True})
    assert_valid_stream(raw)
    assert raw[-1]["type"] == "response.failed"
    assert "guardrail 'omni' could not check the output" in raw[-1]["response"]["error"]["message"]
    assert "nobody" not in json.dumps(raw)


def test_fail_open_lets_the_answer_through_logged_and_counted(
    server: RunningServer, upstream: ScriptedUpstream,
) -> None:
    def failed_open() -> float:
        metrics = httpx.get(server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
        lines = [line for line in metrics.splitlines() if line.startswith("riposte_guardrail_checks_total{")
                 and 'guardrail="omni-down-open"' in line and 'outcome="failed_open"' in line]
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

    before = failed_open()
    upstream.enqueue(text_reply("All fine here."))
    response = strict_create(server, model="fake/m", input="Hello", guardrails=["omni-down-open"])
    assert response.status == "completed" and response.output_text == "All fine here."
    assert failed_open() == before + 2  # the input and the one output window


def test_unknown_guardrails_are_a_400_naming_the_param(server: RunningServer, upstream: ScriptedUpstream) -> None:
    for body, param in (({"guardrails": ["omni", "nope"]}, "guardrails[1]"), ({"shields": ["nope"]}, "shields[0]"),
                        ({"guardrails": [{"type": 7}]}, "guardrails[0].type")):
        reply = httpx.post(f"{server.base_url}/responses", timeout=30,
                           json={"model": "fake/m", "input": "Hi", **body})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == param
    assert upstream.requests == [] and upstream.moderation_requests == []


def test_the_sdk_passes_guardrails_as_extra_body(server: RunningServer, upstream: ScriptedUpstream) -> None:
    response = sdk(server).responses.create(model="fake/m", input=f"The {UNSAFE}, please.",
                                            extra_body={"shields": ["omni"]})
    assert response.status == "completed"
    assert response.output[0].content[0].type == "refusal"  # type: ignore[union-attr]


def test_replay_answers_moderation_calls_from_a_recording(
    tmp_path: Path, model_upstream: ScriptedUpstream, guard_upstream: ScriptedUpstream,
    upstream: ScriptedUpstream,
) -> None:
    recordings = tmp_path / "recordings"
    flagged_input = {"model": "fake/m", "input": f"Teach me the {UNSAFE}.", "guardrails": ["omni"]}
    flagged_output = {"model": "fake/m", "input": "How does it go?", "guardrails": ["omni"], "stream": True}
    upstream.enqueue(text_reply(ANSWER, pieces=len(ANSWER) // 3))
    with server_factory(tmp_path / "rec", f"sqlite+aiosqlite:///{tmp_path / 'rec.db'}") as factory:
        recorder = factory(providers=_providers(model_upstream, guard_upstream), guardrails=SETTINGS,
                           inference_mode=InferenceMode.RECORD, recordings_dir=recordings)
        recorded = strict_create(recorder, **flagged_input)
        recorded_stream = raw_stream(recorder, flagged_output)
    documents = [json.loads(file.read_text()) for file in recordings.glob("*.json")]
    endpoints = sorted(document["request"]["endpoint"] for document in documents)
    calls = len(upstream.moderation_requests)
    assert endpoints == ["/v1/chat/completions"] + ["/v1/moderations"] * calls
    assert all(d["response"]["body"]["__type__"].endswith("ModerationCreateResponse") for d in documents
               if d["request"]["endpoint"] == "/v1/moderations")
    # The guardrail stopped reading the answer early; the recorder read it to its end regardless.
    [chat] = [d for d in documents if d["request"]["endpoint"] == "/v1/chat/completions"]
    assert "".join(chunk["__data__"]["choices"][0]["delta"].get("content") or ""
                   for chunk in chat["response"]["body"] if chunk["__data__"]["choices"]) == ANSWER

    # Offline: the providers point nowhere, and the recordings answer, stopping at the same place.
    offline = [ProviderConfig(name=name, base_url=f"http://127.0.0.1:{free_port()}/v1") for name in
               ("fake", "guard", "down")]
    with server_factory(tmp_path / "replay", f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}") as factory:
        replayer = factory(providers=offline, guardrails=SETTINGS, inference_mode=InferenceMode.REPLAY,
                           recordings_dir=recordings)
        replayed = strict_create(replayer, **flagged_input)
        assert _refusal_message(replayed) == _refusal_message(recorded)
        replayed_stream = raw_stream(replayer, flagged_output)
        assert [e["type"] for e in replayed_stream] == [e["type"] for e in recorded_stream]
        assert replayed_stream[-1]["response"]["output"][0]["content"] == (
            recorded_stream[-1]["response"]["output"][0]["content"])
        _no_unsafe_text(replayed_stream)
        missing = httpx.post(f"{replayer.base_url}/responses", timeout=30,
                             json={**flagged_input, "input": "Something never recorded."})
    assert missing.status_code == 503
    assert "No recording matches POST /v1/moderations" in missing.json()["error"]["message"]
    assert len(upstream.moderation_requests) == calls
