"""Pure pieces of context management: window lookup, compaction items (sealing, expansion),
truncation groups, the summary transcript and the free byte bound."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from riposte.config import ProviderConfig
from riposte.engine.compaction_items import (
    SUMMARY_HEADER,
    CompactionSummary,
    compaction_item,
    expand_compactions,
    kept_items,
)
from riposte.engine.context_fit import compact_threshold, latest_exchange, truncated
from riposte.engine.context_windows import ContextSettings, context_window
from riposte.engine.encrypted_reasoning import reasoning_sealer
from riposte.engine.observed_call import ObservedCall
from riposte.engine.request import CreateResponseRequest
from riposte.engine.summarize import SUMMARY_PROMPT, summarize, transcript_within
from riposte.engine.turn_trace import TurnTrace
from riposte.engine.usage import count_input_tokens, input_tokens_upper_bound
from riposte.errors import InvalidRequestError, UpstreamError
from riposte.inference.router import Route
from riposte.observability.turn_observer import TurnObserver
from riposte.sealing import Keyring, new_key

KEYS = Keyring([new_key()])


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": text}


@pytest.mark.parametrize(("model", "upstream", "window"), [
    ("openai/gpt-4o-mini", "gpt-4o-mini", 128_000),  # the longest prefix wins over "gpt-4"
    ("openai/gpt-4-0613", "gpt-4-0613", 8_192),
    ("openai/gpt-4-32k-0613", "gpt-4-32k-0613", 32_768),
    ("openai/o1-mini", "o1-mini", 128_000),  # not o1's 200k
    ("vllm/meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", 131_072),
    ("ollama/llama3.2", "llama3.2", 8_192),  # configured, over the built-in table
    ("local/my-model", "my-model", 4_096),  # exact configured name
    ("local/unknown", "unknown", 32_000),  # the configured default
])
def test_windows_come_from_configuration_then_families_then_the_default(model: str, upstream: str,
                                                                         window: int) -> None:
    settings = ContextSettings(windows={"llama3.2": 8_192, "local/my-model": 4_096}, default_window=32_000)
    assert context_window(settings, model, upstream) == window


def test_a_compaction_item_expands_to_its_summary_before_the_kept_items() -> None:
    old = [user("one"), assistant("uno"), user("two")]
    item = compaction_item(KEYS, CompactionSummary("They counted to two.", kept=1))
    expanded = expand_compactions([*old, item, assistant("dos"), user("three")], KEYS)
    assert expanded.compacted
    summary = {"type": "message", "role": "user", "content": f"{SUMMARY_HEADER}\n\nThey counted to two."}
    assert expanded.items == [summary, user("two"), assistant("dos"), user("three")]
    # The client may drop what came before the item: the backend reads the same minus the kept item.
    alone = expand_compactions([item, user("three")], KEYS)
    assert alone.items[0] == expanded.items[0] and alone.items[1:] == [user("three")]


def test_only_the_latest_compaction_counts() -> None:
    first = compaction_item(KEYS, CompactionSummary("first", kept=0))
    second = compaction_item(KEYS, CompactionSummary("second", kept=0))
    expanded = expand_compactions([first, user("a"), second, user("b")], KEYS)
    assert [item["content"] for item in expanded.items] == [f"{SUMMARY_HEADER}\n\nsecond", "b"]
    assert not expand_compactions([user("a")], KEYS).compacted


def test_foreign_altered_or_repurposed_blobs_are_400s_naming_the_item() -> None:
    item = compaction_item(KEYS, CompactionSummary("s", kept=0))
    reasoning_blob = reasoning_sealer(KEYS)({"content": [], "summary": []})
    for blob in (compaction_item(Keyring([new_key()]), CompactionSummary("s", 0))["encrypted_content"],
                 item["encrypted_content"][:-2] + "xx", reasoning_blob):
        with pytest.raises(InvalidRequestError) as raised:
            expand_compactions([user("a"), {**item, "encrypted_content": blob}], KEYS)
        assert raised.value.param == "input[1].encrypted_content"


def test_kept_items_start_at_the_last_user_message() -> None:
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c", "output": "4"}
    assert kept_items([user("a"), assistant("b"), user("c"), call, output]) == 3
    assert kept_items([assistant("b")]) == 0


def conversation_with_tools(rounds: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Stay on topic."}]
    for n in range(rounds):
        messages += [
            {"role": "user", "content": f"question {n} " * 20},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": f"c{n}", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": f"c{n}", "content": f"result {n} " * 30},
            {"role": "assistant", "content": f"answer {n}"},
        ]
    return messages


def test_truncation_drops_whole_rounds_from_the_oldest_and_keeps_system_messages() -> None:
    request = CreateResponseRequest(model="m", input="x", truncation="auto", instructions="Be brief.")
    conversation = conversation_with_tools(5)
    kept = truncated(request, [], conversation, 400)
    assert kept[0] == {"role": "system", "content": "Stay on topic."}
    assert kept[-1] == conversation[-1]
    assert count_input_tokens([{"role": "system", "content": "Be brief."}, *kept]) <= 400
    for index, message in enumerate(kept):
        if message["role"] == "tool":
            assert kept[index - 1]["tool_calls"][0]["id"] == message["tool_call_id"]
        if message.get("tool_calls"):
            assert kept[index + 1]["role"] == "tool"
    assert len(kept) < len(conversation)


def test_truncation_reserves_max_output_tokens() -> None:
    conversation = conversation_with_tools(5)
    roomy = truncated(CreateResponseRequest(model="m", input="x"), [], conversation, 600)
    reserved = truncated(CreateResponseRequest(model="m", input="x", max_output_tokens=200), [], conversation, 600)
    assert len(reserved) < len(roomy)


def test_truncating_many_short_messages_counts_a_few_times_not_once_per_dropped_message(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-message estimates of short messages add up to less than a count of the whole (25k
    messages: about 6 tokens each against 7); dropping one message per recount took minutes."""
    from riposte.engine import context_fit

    counts: list[int] = []

    def counting(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
        counts.append(len(messages))
        return count_input_tokens(messages, tools)

    monkeypatch.setattr(context_fit, "count_input_tokens", counting)
    conversation = [{"role": "user", "content": f"m{n}"} for n in range(25_000)]
    kept = truncated(CreateResponseRequest(model="m", input="x", truncation="auto"), [], conversation, 50_000)

    assert kept[-1] == conversation[-1] and count_input_tokens(kept) <= 50_000
    assert len(kept) > 0.8 * len(conversation) * 50_000 / count_input_tokens(conversation)  # not over-dropped
    assert len(counts) <= 6


def test_compact_threshold_defaults_to_most_of_the_window_and_takes_the_lowest() -> None:
    def threshold(entries: list[dict[str, Any]]) -> int | None:
        return compact_threshold(CreateResponseRequest(model="m", input="x", context_management=entries), 1000)

    assert threshold([]) is None
    assert threshold([{"type": "compaction"}]) == 800
    assert threshold([{"type": "compaction", "compact_threshold": 300},
                      {"type": "compaction", "compact_threshold": 200}]) == 200


def test_latest_exchange_begins_at_the_last_user_message() -> None:
    conversation = conversation_with_tools(2)
    assert latest_exchange(conversation) == conversation[-4:]


def test_the_transcript_keeps_its_newest_lines_within_budget() -> None:
    conversation = conversation_with_tools(10)
    transcript = transcript_within(conversation, 200)
    assert "answer 9" in transcript and "question 0" not in transcript
    assert "[Assistant called tool f (c9) with {}]" in transcript and "[tool result for c9]" in transcript


def test_the_byte_bound_is_never_below_the_count() -> None:
    for messages in (conversation_with_tools(3), [{"role": "user", "content": "日本語のテキスト" * 50}],
                     [{"role": "user", "content": [{"type": "text", "text": "a b c " * 100}]}]):
        assert input_tokens_upper_bound(messages) >= count_input_tokens(messages)


class ChunksUpstream:
    """An upstream that streams fixed chunks (the Upstream seam's one method the summary uses)."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks
        self.bodies: list[dict[str, Any]] = []

    async def stream_chat(self, body: dict[str, Any]) -> AsyncGenerator[list[dict[str, Any]]]:
        self.bodies.append(body)
        for chunk in self.chunks:
            yield [chunk]


def summary_route(chunks: list[dict[str, Any]]) -> Route:
    upstream = ChunksUpstream(chunks)
    return Route(provider=ProviderConfig(name="p", base_url="http://127.0.0.1:9/v1"), upstream_model="m",
                 upstream=upstream)  # type: ignore[arg-type]


async def test_the_summary_call_shows_in_the_turns_trace() -> None:
    chunks = [{"choices": [{"delta": {"content": "They met."}, "finish_reason": None}]},
              {"choices": [{"delta": {}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 3}}]
    trace = TurnTrace({"id": "resp_1"})
    watcher = ObservedCall(TurnObserver("resp_1", "p/m", "p", "m"), trace)
    written = await summarize(summary_route(chunks), [{"role": "user", "content": "hi"}], 1000, 50, watcher=watcher)
    assert written.text == "They met." and written.usage.input_tokens == 40
    [step] = trace.steps
    assert step["kind"] == "upstream_call" and step["request"]["messages"][0]["content"] == SUMMARY_PROMPT
    assert step["answer"]["message"]["content"] == "They met." and step["answer"]["finish_reason"] == "stop"


async def test_a_summary_cut_short_fails_in_the_trace() -> None:
    trace = TurnTrace({"id": "resp_1"})
    watcher = ObservedCall(TurnObserver("resp_1", "p/m", "p", "m"), trace)
    with pytest.raises(UpstreamError):
        await summarize(summary_route([{"choices": [{"delta": {"content": "They"}}]}]),
                        [{"role": "user", "content": "hi"}], 1000, 50, watcher=watcher)
    assert "error" in trace.steps[0]
