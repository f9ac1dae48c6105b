"""The seed recordings replay through a running server exactly, driven by the official SDK."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from riposte.testing.grammar import assert_valid_stream
from riposte.testing.server import RunningServer
from tests.conftest import REFERENCE_RECORDINGS, SEED_RECORDINGS

QUESTION = "Which planet has rings around it with a name starting with letter S?"
BASIC_SCOPE = (
    "tests/integration/responses/test_basic_responses.py::"
    "test_response_non_streaming_basic[openai_client-txt=openai/gpt-4o-saturn]"
)


def recorded_text(path: Path) -> str:
    data = json.loads(path.read_text())
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in data["response"]["body"]
        for choice in chunk["__data__"].get("choices") or []
    )


def seed(name: str) -> Path:
    return next(SEED_RECORDINGS.glob(f"{name}_*.json"))


def client(server: RunningServer, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, **kwargs)  # type: ignore[arg-type]


def test_plain_question_replays_seed_001_with_usage(seed_server: RunningServer) -> None:
    response = client(seed_server).responses.create(model="openai/gpt-4o", input=QUESTION)

    assert response.status == "completed"
    assert response.output_text == recorded_text(seed("001"))
    assert response.usage is not None
    assert response.usage.input_tokens == 21 and response.usage.output_tokens == 31
    assert response.usage.total_tokens == 52


def test_streaming_deltas_concatenate_to_seed_001(seed_server: RunningServer) -> None:
    events = list(client(seed_server).responses.create(model="openai/gpt-4o", input=QUESTION, stream=True))

    assert_valid_stream(events)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == recorded_text(seed("001"))
    assert events[-1].type == "response.completed"


def test_inline_history_replays_seed_000(seed_server: RunningServer) -> None:
    messages = json.loads(seed("000").read_text())["request"]["body"]["messages"]
    response = client(seed_server).responses.create(
        model="openai/gpt-4o", input=[{"role": m["role"], "content": m["content"]} for m in messages]
    )
    assert response.output_text == recorded_text(seed("000"))


def test_text_format_replays_seed_002(seed_server: RunningServer) -> None:
    response = client(seed_server).responses.create(
        model="openai/gpt-4o", input=QUESTION, text={"format": {"type": "text"}}
    )
    assert response.output_text == recorded_text(seed("002"))
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "text"


def test_usage_is_counted_locally_when_the_recording_has_none(seed_server: RunningServer) -> None:
    # Seed 002 predates include_usage: its stream carries no usage chunk.
    response = client(seed_server).responses.create(
        model="openai/gpt-4o", input=QUESTION, text={"format": {"type": "text"}}
    )
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


def test_replay_miss_names_hash_endpoint_and_closest_recording(seed_server: RunningServer) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(seed_server).responses.create(model="openai/gpt-4o", input="Which planet is the largest?")
    message = caught.value.message
    assert "request hash" in message and "/v1/chat/completions" in message
    assert "Closest recording" in message and "body.messages[0].content" in message


def test_scoped_chain_replays_reference_then_seed_000(reference_server: RunningServer) -> None:
    sdk = client(reference_server, default_headers={"X-Riposte-Replay-Scope": BASIC_SCOPE})
    first = sdk.responses.create(model="openai/gpt-4o", input=QUESTION)
    assert first.output_text == recorded_text(
        REFERENCE_RECORDINGS / "72e929a4edb861d69eb4e5a364a005a5e219a4263d7b8afadcc8636e068943b0.json"
    )

    second = sdk.responses.create(
        model="openai/gpt-4o", input="Repeat your previous response in all caps.", previous_response_id=first.id
    )
    assert second.output_text == recorded_text(seed("000"))
    assert second.previous_response_id == first.id

    assert sdk.responses.retrieve(first.id).output_text == first.output_text
    items = sdk.responses.input_items.list(second.id, order="asc")
    assert [item.type for item in items.data] == ["message", "message", "message"]
    assert [getattr(item, "role", None) for item in items.data] == ["user", "assistant", "user"]

    sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(first.id)


def test_seed_system_provider_data_header_also_sets_the_scope(reference_server: RunningServer) -> None:
    header = json.dumps({"__test_id": BASIC_SCOPE})
    sdk = client(reference_server, default_headers={"X-LlamaStack-Provider-Data": header})
    first = sdk.responses.create(model="openai/gpt-4o", input=QUESTION)
    assert first.output_text == recorded_text(
        REFERENCE_RECORDINGS / "72e929a4edb861d69eb4e5a364a005a5e219a4263d7b8afadcc8636e068943b0.json"
    )


def test_models_in_replay_mode_are_the_recorded_ones(seed_server: RunningServer) -> None:
    assert [m.id for m in client(seed_server).models.list().data] == ["openai/gpt-4o"]
