"""`text.verbosity` goes upstream only to providers that declare it; `reasoning.context` decides
which earlier reasoning the model sees again."""

from __future__ import annotations

from riposte.config import ProviderConfig
from riposte.testing.server import RunningServer
from tests.conftest import ServerFactory
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply
from tests.integration.sdk import strict_create


def test_verbosity_goes_upstream_where_the_provider_supports_it(
    make_server: ServerFactory, upstream: ScriptedUpstream
) -> None:
    server = make_server(providers=[
        ProviderConfig(name="gpt5", base_url=upstream.base_url, api_key="x", supports_verbosity=True),
        ProviderConfig(name="local", base_url=upstream.base_url, api_key="x"),
    ])
    upstream.enqueue(text_reply("ok"), text_reply("ok"))

    first = strict_create(server, model="gpt5/m", input="hi", text={"verbosity": "low"})
    strict_create(server, model="local/m", input="hi", text={"verbosity": "low"})

    assert upstream.requests[0]["verbosity"] == "low"
    assert "verbosity" not in upstream.requests[1]
    assert first.text is not None and first.text.verbosity == "low"


def history_with_reasoning() -> list[dict[str, object]]:
    return [
        {"role": "user", "content": "first"},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "old thoughts"}]},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second"},
    ]


def test_current_turn_context_drops_reasoning_from_earlier_turns(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("a"), text_reply("b"), text_reply("c"))
    for context in ("current_turn", "all_turns", "auto"):
        strict_create(fake_server, model="fake/m", input=history_with_reasoning(), reasoning={"context": context})

    carried = [[m.get("reasoning_content") for m in r["messages"] if m["role"] == "assistant"]
               for r in upstream.requests]
    assert carried == [[None], ["old thoughts"], ["old thoughts"]]


def test_current_turn_context_keeps_this_turns_reasoning(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply("step one", "first answer"), text_reply("done"))
    first = strict_create(fake_server, model="fake/m", input="first", reasoning={"context": "current_turn"})
    strict_create(fake_server, model="fake/m", input=[
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "x"},
    ], previous_response_id=first.id, reasoning={"context": "current_turn"})

    # No user message in this turn: everything since the last user message is the current turn.
    assistant = [m for m in upstream.requests[1]["messages"] if m["role"] == "assistant"]
    assert assistant[0]["reasoning_content"] == "step one"
