"""The Agents SDK's `OpenAIResponsesCompactionSession` (unmodified) over Riposte and a scripted
upstream: a 40-turn session stays within a 600-token window, because the session compacts through
`POST /v1/responses/compact` and the summary the scripted model wrote reaches the model in every
later turn. Both storage backends."""

from __future__ import annotations

from typing import Any

import openai
from agents import (
    Agent,
    OpenAIResponsesCompactionSession,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    SQLiteSession,
    set_tracing_disabled,
)

from riposte.engine.summarize import SUMMARY_PROMPT
from riposte.engine.usage import count_input_tokens
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream, text_reply
from tests.integration.context_servers import CONTEXT_SETTINGS, WINDOW
from tests.integration.module_servers import module_upstream, server, upstream

__all__ = ["module_upstream", "server", "upstream"]  # fixtures
SERVER_SETTINGS = CONTEXT_SETTINGS

set_tracing_disabled(True)
TURNS = 40


def is_summary_request(request: dict[str, Any]) -> bool:
    return request["messages"][0] == {"role": "system", "content": SUMMARY_PROMPT}


async def test_a_forty_turn_session_stays_in_the_window(server: RunningServer, upstream: ScriptedUpstream) -> None:
    summaries: list[str] = []

    def compact_every_six_answers(context: dict[str, Any]) -> bool:
        if len(context["compaction_candidate_items"]) < 6:
            return False
        # The session compacts right after this: script the summary the model writes.
        summaries.append(f"Summary {len(summaries)}: the user asked about days 0 to {turn} of a Lisbon trip.")
        upstream.enqueue(text_reply(summaries[-1]))
        return True

    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=60) as client:
        session = OpenAIResponsesCompactionSession(
            "trip", SQLiteSession("trip"), client=client, model="gpt-4.1",
            should_trigger_compaction=compact_every_six_answers)
        agent = Agent(name="planner", instructions="Plan the trip, briefly.",
                      model=OpenAIResponsesModel(model="fake/small", openai_client=client))
        for turn in range(TURNS):
            upstream.enqueue(text_reply(f"On day {turn}, take the morning train to a new town and walk around."))
            result = await Runner.run(agent, f"What should I do on day {turn} of my Lisbon trip?", session=session,
                                      run_config=RunConfig(tracing_disabled=True))
            assert result.final_output.startswith(f"On day {turn},")

    turn_calls = [request for request in upstream.requests if not is_summary_request(request)]
    summary_calls = [request for request in upstream.requests if is_summary_request(request)]
    assert len(turn_calls) == TURNS and len(summary_calls) == len(summaries) >= 5
    # Without compaction the last turns would be far over the window (and answered 400).
    assert max(count_input_tokens(call["messages"]) for call in turn_calls) <= WINDOW
    # Every summary reaches the model in the turn after it was written, and replaces what it covers.
    written = 0
    for call in upstream.requests:
        if is_summary_request(call):
            written += 1
            continue
        text = str(call["messages"])
        if written:
            assert summaries[written - 1] in text
            assert "day 0 of my Lisbon" not in text
