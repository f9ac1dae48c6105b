"""A pytest plugin (registered through the `pytest11` entry point) for deterministic agent tests.

Each test gets a replay scope equal to its node id. Send it as `X-Riposte-Replay-Scope` and, on
replay, Riposte prefers the recordings that this very test made in record mode.
"""

from __future__ import annotations

import pytest

from riposte.inference.scope import REPLAY_SCOPE_HEADER


@pytest.fixture
def riposte_replay_scope(request: pytest.FixtureRequest) -> str:
    """The current test's replay scope: its pytest node id."""
    nodeid: str = request.node.nodeid
    return nodeid


@pytest.fixture
def riposte_scope_headers(riposte_replay_scope: str) -> dict[str, str]:
    """Default headers for an `openai` client, e.g. `OpenAI(..., default_headers=riposte_scope_headers)`."""
    return {REPLAY_SCOPE_HEADER: riposte_replay_scope}
