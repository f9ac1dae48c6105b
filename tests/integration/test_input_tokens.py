"""`POST /v1/responses/input_tokens`, through the SDK's `responses.input_tokens.count`: the count
equals the input usage that the same request reports when the backend gives no usage, with
instructions, tools and `previous_response_id` or conversation history included."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.responses.input_token_count_response import InputTokenCountResponse

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.sdk import sdk

TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def used_input_tokens(client: openai.OpenAI, upstream: ScriptedUpstream, **params: object) -> tuple[str, int]:
    upstream.enqueue(text_reply("Sunny and warm today."))  # no usage chunk: Riposte counts it
    response = client.responses.create(model="fake/m", **params)  # type: ignore[call-overload]
    assert response.usage is not None
    return response.id, response.usage.input_tokens


def test_count_matches_the_usage_of_the_same_request(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    params = {"input": "Weather in Paris?", "instructions": "Answer in one line.", "tools": TOOLS}
    first_id, used = used_input_tokens(client, upstream, **params)

    counted = client.responses.input_tokens.count(model="fake/m", **params)  # type: ignore[arg-type]

    assert counted.object == "response.input_tokens"
    assert counted.input_tokens == used
    without_tools = client.responses.input_tokens.count(model="fake/m", input="Weather in Paris?",
                                                        instructions="Answer in one line.")
    assert without_tools.input_tokens < used

    chained = {"input": "And tomorrow?", "previous_response_id": first_id, "tools": TOOLS}
    _, used_chained = used_input_tokens(client, upstream, **chained)
    assert client.responses.input_tokens.count(**chained).input_tokens == used_chained  # type: ignore[arg-type]
    assert used_chained > used - 10


def test_count_includes_conversation_history(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    client = sdk(fake_server)
    conversation = client.conversations.create(items=[{"role": "user", "content": "I live in Paris. " * 20}])
    alone = client.responses.input_tokens.count(input="Weather?").input_tokens
    with_history = client.responses.input_tokens.count(input="Weather?", conversation=conversation.id).input_tokens
    _, used = used_input_tokens(client, upstream, input="Weather?", conversation=conversation.id)
    assert with_history == used > alone + 80


def test_the_reply_is_the_sdks_type_exactly(fake_server: RunningServer) -> None:
    reply = httpx.post(f"{fake_server.base_url}/responses/input_tokens", json={"input": "hi"}, timeout=30)
    assert reply.status_code == 200
    counted = InputTokenCountResponse.model_validate(reply.json(), strict=True)
    assert set(reply.json()) == {"object", "input_tokens"} and counted.input_tokens > 0


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi", "unknown": 1}, "unknown"),
    ({"input": "hi", "personality": "friendly"}, "personality"),
    ({"input": "hi", "previous_response_id": "resp_missing"}, "previous_response_id"),
    ({"input": [{"type": "item_reference", "id": "msg_missing"}]}, "input[0].id"),
    ({"input": "hi", "truncation": "middle"}, "truncation"),
])
def test_bad_count_requests_name_the_param(fake_server: RunningServer, body: dict[str, object], param: str) -> None:
    reply = httpx.post(f"{fake_server.base_url}/responses/input_tokens", json=body, timeout=30)
    assert reply.status_code in (400, 404), reply.text
    assert reply.json()["error"]["param"] == param
