"""The SDK's higher-level helpers accumulate our streams and parse our formats unchanged."""

from __future__ import annotations

import pydantic

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply, tool_calls_reply
from tests.integration.sdk import sdk


class Planet(pydantic.BaseModel):
    name: str
    rings: bool


def test_responses_stream_helper_accumulates_text_and_tool_calls(
    fake_server: RunningServer, upstream: ScriptedUpstream
) -> None:
    upstream.enqueue(tool_calls_reply([("call_1", "lookup", '{"q": "rings"}')], text="Let me check."))
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    with sdk(fake_server).responses.stream(model="fake/m", input="rings?", tools=[tool]) as stream:
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["message", "function_call"]
    assert final.output[1].arguments == '{"q": "rings"}'  # type: ignore[union-attr]


def test_responses_stream_helper_handles_reasoning(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(reasoning_reply("thinking", "Saturn"))
    with sdk(fake_server).responses.stream(model="fake/m", input="planet?") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Saturn"


def test_responses_parse_with_a_pydantic_text_format(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    upstream.enqueue(text_reply('{"name": "Saturn", "rings": true}'))
    parsed = sdk(fake_server).responses.parse(model="fake/m", input="A ringed planet?", text_format=Planet)
    assert parsed.output_parsed == Planet(name="Saturn", rings=True)
    sent = upstream.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Planet"


def test_async_client_streams_too(fake_server: RunningServer, upstream: ScriptedUpstream) -> None:
    import asyncio

    import openai

    upstream.enqueue(text_reply("async ok"))

    async def run() -> str:
        client = openai.AsyncOpenAI(base_url=fake_server.base_url, api_key="x", max_retries=0)
        text = ""
        async for event in await client.responses.create(model="fake/m", input="hi", stream=True):
            if event.type == "response.output_text.delta":
                text += event.delta
        await client.close()
        return text

    assert asyncio.run(run()) == "async ok"
