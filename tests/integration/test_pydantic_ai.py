"""pydantic-ai (pinned in the test extra), unmodified, with its OpenAI Responses model and a
reasoning model id: it asks for `reasoning.encrypted_content` on every request and sends its
history back itself, tool calls included."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings
from pydantic_ai.providers.openai import OpenAIProvider

from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, reasoning_reply, text_reply, tool_calls_reply

REASONING_MODEL = "o4-mini"  # a reasoning model id for pydantic-ai; a bare name routes to `fake`


def agent(server: RunningServer, sent: list[dict[str, Any]], **settings: object) -> Agent[None, str]:
    async def keep(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0,
                                http_client=httpx.AsyncClient(event_hooks={"request": [keep]}))
    model = OpenAIResponsesModel(REASONING_MODEL, provider=OpenAIProvider(openai_client=client))
    weather: Agent[None, str] = Agent(model, instructions="Be brief.",
                                      model_settings=OpenAIResponsesModelSettings(**settings))  # type: ignore[typeddict-item]

    @weather.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}."

    return weather


@pytest.mark.parametrize("store", [None, False])
async def test_reasoning_model_agent_with_a_tool_over_two_runs(
    fake_server: RunningServer, upstream: ScriptedUpstream, store: bool | None
) -> None:
    upstream.enqueue(
        tool_calls_reply([("call_w", "get_weather", '{"city": "Paris"}')]),
        reasoning_reply("The tool said sunny.", "Sunny in Paris."),
        text_reply("Still sunny."),
    )
    settings = {} if store is None else {"openai_store": store}
    sent: list[dict[str, Any]] = []
    weather = agent(fake_server, sent, **settings)

    first = await weather.run("Weather in Paris?")
    second = await weather.run("And tomorrow?", message_history=first.all_messages())

    assert first.output == "Sunny in Paris." and second.output == "Still sunny."
    tool = upstream.requests[1]["messages"][-1]
    assert tool == {"role": "tool", "tool_call_id": "call_w", "content": "Sunny in Paris."}
    history = upstream.requests[2]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert history[4]["reasoning_content"] == "The tool said sunny."
    assert all(body["include"] == ["reasoning.encrypted_content"] for body in sent)
    reasoning_sent_back = [i for i in sent[2]["input"] if i.get("type") == "reasoning"]
    assert len(reasoning_sent_back) == 1 and reasoning_sent_back[0]["encrypted_content"]
