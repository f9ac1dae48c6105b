"""History translation yields what Chat Completions backends accept, for every ordering of
messages, calls and outputs that clients produce: all interleavings of two calls, their outputs,
a user message, an assistant message and a reasoning item, whole or split between stored history
and new input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from riposte.engine.chat_sequence import valid_chat_sequence
from riposte.engine.items import input_as_items
from riposte.engine.translate import Message, items_to_messages

FIRST = {"role": "user", "content": "first question"}
POOL: dict[str, dict[str, Any]] = {
    "call_a": {"type": "function_call", "call_id": "a", "name": "f", "arguments": '{"x": 1}'},
    "call_b": {"type": "function_call", "call_id": "b", "name": "g", "arguments": '{"y": 2}'},
    "out_a": {"type": "function_call_output", "call_id": "a", "output": "A"},
    "out_b": {"type": "function_call_output", "call_id": "b", "output": "B"},
    "user": {"role": "user", "content": "meanwhile, another question"},
    "assistant": {"role": "assistant", "content": [{"type": "output_text", "text": "an answer"}]},
}
REASONING = {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "thinking"}]}


def sdk_orderings() -> list[tuple[str, ...]]:
    """Every order of the pool in which each call comes before its own output."""
    return [order for order in itertools.permutations(POOL)
            if order.index("call_a") < order.index("out_a") and order.index("call_b") < order.index("out_b")]


def translate(items: list[dict[str, Any]], split: int) -> list[Message]:
    """As a turn does: the first `split` items were an earlier turn (history), the rest is new."""
    history = valid_chat_sequence(items_to_messages(input_as_items(items[:split]), []))
    new = items_to_messages(input_as_items(items[split:]), history)
    return valid_chat_sequence(history + new)


def assert_backend_accepts(messages: list[Message]) -> None:
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            assert message.get("content") or message.get("tool_calls") or message.get("refusal"), message
        calls = {call["id"] for call in message.get("tool_calls") or ()}
        if calls:
            answers = messages[index + 1:index + 1 + len(calls)]
            assert [m["role"] for m in answers] == ["tool"] * len(calls), messages
            assert {m["tool_call_id"] for m in answers} == calls, messages
        if message["role"] == "tool":
            previous = messages[index - 1]
            assert previous["role"] == "tool" or previous.get("tool_calls"), messages


def non_tool_contents(messages: list[Message]) -> list[Any]:
    return [m.get("content") or m.get("tool_calls") for m in messages if m["role"] != "tool"]


@pytest.mark.parametrize("with_reasoning", [False, True])
def test_every_sdk_ordering_becomes_a_valid_chat_sequence(with_reasoning: bool) -> None:
    checked = 0
    for order in sdk_orderings():
        items = [FIRST] + [POOL[name] for name in order]
        if with_reasoning:
            items.insert(items.index(POOL["call_a"]), REASONING)
        plain = translate(items, len(items))
        # A reasoning item and the item it led to always come back in one response.
        splits = [s for s in range(1, len(items) + 1) if items[s - 1] is not REASONING]
        for split in splits:
            messages = translate(items, split)
            assert_backend_accepts(messages)
            # Nothing lost, nothing duplicated, and messages keep their relative order.
            assert len(messages) == 7
            assert non_tool_contents(messages) == non_tool_contents(plain)
            if with_reasoning:
                assert [m["reasoning_content"] for m in messages if "reasoning_content" in m] == ["thinking"]
            checked += 1
    assert checked == 180 * 7


def test_a_user_message_between_a_call_and_its_output_moves_after_the_output() -> None:
    items = input_as_items([FIRST, POOL["call_a"], POOL["user"], POOL["out_a"]])
    messages = valid_chat_sequence(items_to_messages(items, []))
    assert [(m["role"], m.get("tool_call_id")) for m in messages] == [
        ("user", None), ("assistant", None), ("tool", "a"), ("user", None)]


def test_an_output_for_a_call_deep_in_history_is_moved_next_to_it() -> None:
    history = valid_chat_sequence(items_to_messages(input_as_items([FIRST, POOL["call_a"], POOL["user"]]), []))
    new = items_to_messages(input_as_items([POOL["out_a"]]), history)
    messages = valid_chat_sequence(history + new)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]


def test_empty_assistant_messages_are_dropped() -> None:
    messages = valid_chat_sequence([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [{"type": "text", "text": ""}]},
        {"role": "assistant", "content": None},
        {"role": "assistant", "content": "answer"},
    ])
    assert messages == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer"}]


def test_an_assistant_message_with_only_tool_calls_a_refusal_or_reasoning_is_kept() -> None:
    kept = [{"role": "assistant", "content": "", "refusal": "no"},
            {"role": "assistant", "content": "", "reasoning_content": "thinking"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "A"}]
    assert valid_chat_sequence(kept) == kept
