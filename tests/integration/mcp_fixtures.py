"""Shared servers for the MCP tests: real MCP servers on loopback, one Riposte server per module
on a scripted model, configured to allow loopback MCP URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from riposte.config import ProviderConfig
from riposte.outbound import OutboundPolicy
from riposte.testing.server import RunningServer
from tests.conftest import server_factory
from tests.fakes.mcp_server import McpTestServer, boiling_point_server, toolbox_server
from tests.fakes.scripted_upstream import ScriptedUpstream

TOKEN = "test-token"
LOOPBACK = OutboundPolicy(allow_loopback=True)


@pytest.fixture(scope="session")
def boiling_mcp() -> Iterator[McpTestServer]:
    with McpTestServer(boiling_point_server()) as server:
        yield server


@pytest.fixture(scope="session")
def toolbox_mcp() -> Iterator[McpTestServer]:
    with McpTestServer(toolbox_server()) as server:
        yield server


@pytest.fixture(scope="session")
def guarded_mcp() -> Iterator[McpTestServer]:
    """Answers only requests bearing `Authorization: Bearer test-token`."""
    with McpTestServer(boiling_point_server(), token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def mcp_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture
def mcp_model(mcp_upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    mcp_upstream.reset()
    yield mcp_upstream
    assert mcp_upstream.pending == 0, "a scripted reply was never asked for"


@pytest.fixture(scope="module")
def mcp_riposte(tmp_path_factory: pytest.TempPathFactory, mcp_upstream: ScriptedUpstream) -> Iterator[RunningServer]:
    data: Path = tmp_path_factory.mktemp("mcp-riposte")
    with server_factory(data, f"sqlite+aiosqlite:///{data / 'riposte.db'}") as factory:
        yield factory(providers=[ProviderConfig(name="fake", base_url=mcp_upstream.base_url, api_key="x")],
                      outbound=LOOPBACK, mcp_timeout_seconds=3.0)


def mcp_tool(server: McpTestServer, label: str = "localmcp", **fields: object) -> dict[str, object]:
    return {"type": "mcp", "server_label": label, "server_url": server.url, **fields}
