"""Guardrails' pure parts: the look-ahead window, verdict parsing, request selection."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riposte import cli
from riposte.config import ProviderConfig, Settings
from riposte.errors import InvalidRequestError
from riposte.guardrails.guards import GuardRegistry, OutputFlagged, TurnGuard
from riposte.guardrails.lookahead import LookAhead, answer_text
from riposte.guardrails.selection import requested_guardrails
from riposte.guardrails.settings import GuardConfig, GuardrailSettings
from riposte.guardrails.verdicts import (
    LLAMA_GUARD_3_CATEGORIES,
    MalformedVerdict,
    Verdict,
    guarded_input_text,
    llama_guard_prompt,
    llama_guard_verdict,
    moderation_verdict,
    pieces,
)
from riposte.inference.router import ModelRouter


def _content(text: str, **extra: Any) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": text}, **extra}]}


def _run(window: LookAhead, chunks: list[dict[str, Any]], flagged: str | None = None) -> tuple[list[Any], list[str]]:
    """Drive the window as the turn does: every check reads `window.text`; returns what was released
    and what each check read. A check whose text contains `flagged` stops the run."""
    released: list[Any] = []
    checked: list[str] = []
    for chunk in chunks:
        released += window.hold(chunk)
        if window.check_due:
            checked.append(window.text)
            if flagged and flagged in window.text:
                return released, checked
            released += window.passed()
    if window.needs_final_check:
        checked.append(window.text)
        if flagged and flagged in window.text:
            return released, checked
    released += window.passed(final=True)
    return released, checked


def test_text_is_released_only_after_a_check_and_in_order() -> None:
    window = LookAhead(window_chars=10, overlap_chars=4)
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "hm"}}]}]
    chunks += [_content(piece) for piece in ["Hello ", "there, ", "how are ", "you today?"]]
    chunks += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, {"choices": [], "usage": {"x": 1}}]
    released, checked = _run(window, chunks)
    assert released[0] is chunks[0]  # nothing held yet: it goes at once
    assert "".join(answer_text(c) for c in released) == "Hello there, how are you today?"
    assert released[-2:] == chunks[-2:]  # the finish and usage chunks stay behind the text
    # The last 4 characters of a passed window are read again with what follows; the end of the
    # answer needs no check of its own when nothing new came after the last one.
    assert checked == ["Hello there, ", "re, how are you today?"]


def test_a_split_chunk_keeps_its_other_fields_on_the_tail_and_the_original_is_untouched() -> None:
    window = LookAhead(window_chars=5, overlap_chars=2)
    chunk = _content("abcdefgh", logprobs={"content": [{"token": "abcdefgh"}]}, finish_reason="stop")
    original = repr(chunk)
    assert window.hold(chunk) == []
    [head] = window.passed()
    assert head == {"choices": [{"index": 0, "delta": {"content": "abcdef"}}]}
    [tail] = window.passed(final=True)
    assert tail["choices"][0] == {"index": 0, "delta": {"content": "gh"}, "logprobs": {"content": [
        {"token": "abcdefgh"}]}, "finish_reason": "stop"}
    assert repr(chunk) == original


@given(text=st.text(min_size=1, max_size=300), cuts=st.lists(st.integers(1, 12), min_size=1, max_size=60),
       window_chars=st.integers(2, 40), data=st.data())
def test_released_text_is_the_text_and_no_phrase_up_to_the_overlap_leaks(
    text: str, cuts: list[int], window_chars: int, data: st.DataObject,
) -> None:
    overlap = data.draw(st.integers(0, window_chars - 1))
    pieces, rest = [], text
    for cut in cuts * (len(text) // max(1, sum(cuts)) + 1):
        if not rest:
            break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces += [rest] if rest else []
    chunks = [_content(piece) for piece in pieces]
    released, _ = _run(LookAhead(window_chars, overlap), chunks)
    assert "".join(answer_text(c) for c in released) == text
    # A phrase of at most `overlap` characters that a check flags: no part of it is ever released.
    if overlap and len(text) >= overlap:
        start = data.draw(st.integers(0, len(text) - overlap))
        phrase = text[start:start + overlap]
        out, checked = _run(LookAhead(window_chars, overlap), chunks, flagged=phrase)
        shown = "".join(answer_text(c) for c in out)
        first = text.find(phrase)
        assert any(phrase in c for c in checked)
        assert len(shown) <= first, "text from the flagged phrase on was released"


def test_a_phrase_split_by_the_window_boundary_is_caught_before_any_of_it_is_released() -> None:
    # The first window "0123456789" passes; its last 6 characters stay held, so the next check
    # reads "6789AB" whole, and none of it went out.
    chunks = [_content("0123456789"), _content("ABCDEFGHIJ")]
    released, checked = _run(LookAhead(window_chars=10, overlap_chars=6), chunks, flagged="6789AB")
    assert checked == ["0123456789", "456789ABCDEFGHIJ"]
    assert "".join(answer_text(c) for c in released) == "0123"


@given(text=st.text(max_size=400), size=st.integers(2, 60), data=st.data())
def test_pieces_cover_the_text_and_hold_every_short_phrase_whole(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    parts = pieces(text, size, overlap)
    assert all(len(part) <= size for part in parts)
    assert parts[0] == text[:size] and text.endswith(parts[-1])
    if len(text) > overlap:
        start = data.draw(st.integers(0, len(text) - min(len(text), overlap + 1)))
        phrase = text[start:start + overlap + 1]
        assert any(phrase in part for part in parts)


def test_window_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        LookAhead(window_chars=4, overlap_chars=4)
    with pytest.raises(ValueError, match="overlap_chars"):
        GuardrailSettings(window_chars=10, overlap_chars=10)
    with pytest.raises(ValueError, match="not among the guards"):
        GuardrailSettings(default=["nope"])


def test_moderation_answers() -> None:
    assert moderation_verdict({"results": [{"flagged": False, "categories": {"violence": False}}]}) == Verdict(False)
    assert moderation_verdict({"results": [
        {"flagged": True, "categories": {"violence": True, "hate": False, "self-harm": True}}]}) == Verdict(
        True, ("violence", "self-harm"))
    for malformed in ({}, {"results": []}, {"results": [{"categories": {}}]}, {"results": ["x"]}):
        with pytest.raises(MalformedVerdict):
            moderation_verdict(malformed)


def _completion(text: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_llama_guard_answers() -> None:
    categories = LLAMA_GUARD_3_CATEGORIES
    assert llama_guard_verdict(_completion("safe"), categories) == Verdict(False)
    assert llama_guard_verdict(_completion("\n\nsafe\n"), categories) == Verdict(False)
    assert llama_guard_verdict(_completion("unsafe\nS1,S10"), categories) == Verdict(
        True, ("S1 (Violent Crimes)", "S10 (Hate)"))
    assert llama_guard_verdict(_completion("unsafe"), categories) == Verdict(True, ())
    assert llama_guard_verdict(_completion("unsafe\nS99"), categories) == Verdict(True, ("S99",))
    for malformed in (_completion("I think it is fine"), _completion(None), {"choices": []}):
        with pytest.raises(MalformedVerdict):
            llama_guard_verdict(malformed, categories)


def test_llama_guard_prompt_asks_about_the_last_message_of_the_stage() -> None:
    prompt = llama_guard_prompt("input", "how do I pick a lock?", {"S2": "Non-Violent Crimes."})
    assert "unsafe content in 'User' messages" in prompt
    assert "S2: Non-Violent Crimes.\n<END UNSAFE CONTENT CATEGORIES>" in prompt
    assert "<BEGIN CONVERSATION>\n\nUser: how do I pick a lock?\n\n<END CONVERSATION>" in prompt
    assert prompt.endswith("a second line must include a comma-separated list of violated categories.")
    output = llama_guard_prompt("output", "Step one", {"S2": "x"}, user_text="how?")
    assert "ONLY THE LAST Agent message" in output
    assert "User: how?\n\nAgent: Step one\n\n<END CONVERSATION>" in output


def test_input_text_is_what_the_model_has_not_answered_yet() -> None:
    messages = [
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": "old answer"},
        {"role": "user", "content": "refused question"},
        {"role": "assistant", "content": "", "refusal": "I can't help with that"},
        {"role": "user", "content": [{"type": "text", "text": "new"}, {"type": "image_url", "image_url": {}}]},
        {"role": "tool", "tool_call_id": "c", "content": "tool said"},
    ]
    assert guarded_input_text("Be brief.", messages) == "Be brief.\n\nrefused question\n\nnew\n\ntool said"
    assert guarded_input_text(None, messages[:2]) == ""


def test_requests_name_guardrails_by_string_or_type_object_and_unknown_ones_400() -> None:
    known = {"omni", "llama-guard"}
    assert requested_guardrails(["omni"], [{"type": "llama-guard"}, "omni"], known) == ["omni", "llama-guard"]
    assert requested_guardrails(None, None, known) == []
    with pytest.raises(InvalidRequestError) as unknown:
        requested_guardrails(["omni", "nope"], None, known)
    assert unknown.value.param == "guardrails[1]"
    assert unknown.value.code == "unknown_guardrail"
    assert "llama-guard, omni" in unknown.value.message
    with pytest.raises(InvalidRequestError) as bad_type:
        requested_guardrails(None, [{"type": 3}], known)
    assert bad_type.value.param == "shields[0].type"
    with pytest.raises(InvalidRequestError) as extra_key:
        requested_guardrails([{"type": "omni", "x": 1}], None, known)
    assert extra_key.value.param == "guardrails[0]"


def test_a_guard_whose_model_no_provider_serves_stops_the_start() -> None:
    settings = Settings(providers=[ProviderConfig(name="p", base_url="http://127.0.0.1:9/v1", models=["m"])],
                        guardrails=GuardrailSettings(guards=[GuardConfig(name="g", type="moderations", model="p/x")]))
    with pytest.raises(ValueError, match="guardrail 'g': The model 'p/x' does not exist"):
        GuardRegistry.from_settings(settings.guardrails, ModelRouter(settings))


def test_riposte_serve_names_a_guard_whose_model_no_provider_serves_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "riposte.yaml"
    config.write_text("providers:\n  - {name: local, base_url: 'http://127.0.0.1:9/v1', models: [m]}\n"
                      "guardrails:\n  guards:\n    - {name: lg, type: llama_guard, model: llama-guard3}\n")
    assert cli.main(["serve", "--config", str(config), "--data-dir", str(tmp_path), "--port", "9"]) == 2
    error = capsys.readouterr().err
    assert error == ("riposte: guardrail 'lg': The model 'llama-guard3' does not exist or is not served by "
                     "provider 'local'.\n")


def test_no_guardrail_means_no_turn_guard_and_an_empty_server_knows_no_name() -> None:
    assert GuardRegistry.empty().for_turn(None, None) is None
    assert GuardRegistry.empty().for_turn([], []) is None
    with pytest.raises(InvalidRequestError, match="none are configured"):
        GuardRegistry.empty().for_turn(["omni"], None)


@pytest.mark.parametrize("batch_size", [1, 3, 40])
async def test_moderated_batches_release_what_chunk_by_chunk_releases_before_a_flag(
    batch_size: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upstream's chunks come in batches (one per socket read): whatever the batches, the
    chunks that go out before a flagged check are the ones a chunk-by-chunk run releases."""
    text = "".join(f"{n:03d}" for n in range(40))
    phrase = text[70:74]
    chunks = [_content(text[i:i + 3]) for i in range(0, len(text), 3)]
    guard = TurnGuard(guards=(), settings=GuardrailSettings(window_chars=10, overlap_chars=4))

    async def check(_: TurnGuard, held: str) -> None:
        if phrase in held:
            raise OutputFlagged("no")

    monkeypatch.setattr(TurnGuard, "_check_output", check)

    async def upstream() -> AsyncGenerator[list[dict[str, Any]]]:
        for start in range(0, len(chunks), batch_size):
            yield chunks[start:start + batch_size]

    out: list[dict[str, Any]] = []
    with pytest.raises(OutputFlagged):
        async for batch in guard.moderated(upstream()):
            assert batch, "an empty batch"
            out += batch
    expected, _ = _run(LookAhead(window_chars=10, overlap_chars=4), chunks, flagged=phrase)
    assert out == expected and expected
