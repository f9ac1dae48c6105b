"""The Vercel AI SDK (`ai` 6 + `@ai-sdk/openai` 3, pinned in tests/clients/vercel-ai), unmodified,
against a real Riposte over the scripted upstream: a chat that re-sends `response.messages`
(earlier outputs come back as `item_reference` items with store on), and a `store: false` chat
with a reasoning model id (the SDK adds `include: ["reasoning.encrypted_content"]` and sends the
sealed reasoning back)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from riposte.testing.server import RunningServer
from tests.clients.npm import npm_installed
from tests.conftest import REPO
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply

PACKAGE = REPO / "tests" / "clients" / "vercel-ai"
REASONING_MODEL = "gpt-5-mini"  # the SDK treats gpt-5* ids as reasoning models; routed to `fake`


@pytest.fixture(scope="session")
def vercel_ai() -> None:
    npm_installed(PACKAGE)


def chat(server: RunningServer, model: str, store: bool, turns: int) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None, "node is needed for the Vercel AI SDK test"
    done = subprocess.run([node, str(PACKAGE / "chat.mjs"), server.base_url, model, str(store).lower(), str(turns)],
                          capture_output=True, text=True, timeout=120, cwd=PACKAGE)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_three_turn_chat_resending_response_messages_with_store_on(
    vercel_ai: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(text_reply("Answer one."), text_reply("Answer two."), text_reply("Answer three."))

    turns = chat(fake_server, "fake/m", store=True, turns=3)

    assert [t["text"] for t in turns] == ["Answer one.", "Answer two.", "Answer three."]
    assert [i["type"] for i in turns[2]["request"]["input"] if "type" in i].count("item_reference") == 2
    assert upstream.requests[2]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Question 1?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Answer one."}]},
        {"role": "user", "content": [{"type": "text", "text": "Question 2?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Answer two."}]},
        {"role": "user", "content": [{"type": "text", "text": "Question 3?"}]},
    ]


def test_reasoning_model_chat_with_store_on_references_the_reasoning(
    vercel_ai: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply("Thinking about one.", "Answer one."), text_reply("Answer two."))

    turns = chat(fake_server, REASONING_MODEL, store=True, turns=2)

    assert turns[1]["text"] == "Answer two."
    assistant = upstream.requests[1]["messages"][1]
    assert assistant["role"] == "assistant" and assistant["reasoning_content"] == "Thinking about one."


def test_store_false_turn_with_a_reasoning_model_carries_sealed_reasoning(
    vercel_ai: None, fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(reasoning_reply("Private chain of thought.", "Answer one."), text_reply("Answer two."))

    turns = chat(fake_server, REASONING_MODEL, store=False, turns=2)

    assert turns[0]["request"]["store"] is False
    assert turns[0]["request"]["include"] == ["reasoning.encrypted_content"]
    sent_back = next(i for i in turns[1]["request"]["input"] if i.get("type") == "reasoning")
    assert sent_back["encrypted_content"] and "Private" not in json.dumps(sent_back)
    assert turns[1]["text"] == "Answer two."
    assistant = upstream.requests[1]["messages"][1]
    assert assistant["reasoning_content"] == "Private chain of thought."
