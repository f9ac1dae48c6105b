"""One misbehaving upstream and one server, shared by the whole fault suite.

The server has small deadlines, so each deadline fires in well under a second, and a small
output cap. Besides the scripted upstream (`fake/...`) it has two providers that fail at the
socket: `refused/...` (nothing listens) and `blackhole/...` (a listener whose backlog is full, so
connecting hangs).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from riposte.config import ProviderConfig, Settings
from riposte.testing.server import RunningServer
from tests.fakes.scripted_upstream import ScriptedUpstream

CONNECT_S = 0.3
FIRST_BYTE_S = 0.5
IDLE_S = 0.3
TOTAL_S = 1.5
MAX_OUTPUT_CHARS = 2000


@pytest.fixture(scope="module")
def fault_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_script(request: pytest.FixtureRequest) -> None:
    if "fault_upstream" in request.fixturenames:
        request.getfixturevalue("fault_upstream").reset()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def blackhole_port() -> Iterator[int]:
    """A listener that never accepts, its one-slot backlog already taken: a SYN gets no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


def deadlines(**extra: object) -> dict[str, object]:
    return {"connect_timeout_seconds": CONNECT_S, "first_byte_timeout_seconds": FIRST_BYTE_S,
            "idle_timeout_seconds": IDLE_S, "total_timeout_seconds": TOTAL_S, **extra}


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory, fault_upstream: ScriptedUpstream,
                 blackhole_port: int) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("faults")
    providers = [
        ProviderConfig(name="fake", base_url=fault_upstream.base_url, api_key="x", **deadlines()),
        ProviderConfig(name="refused", base_url=f"http://127.0.0.1:{_closed_port()}/v1", **deadlines()),
        ProviderConfig(name="blackhole", base_url=f"http://127.0.0.1:{blackhole_port}/v1", **deadlines()),
    ]
    settings = Settings(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'riposte.db'}",
                        providers=providers, max_output_chars=MAX_OUTPUT_CHARS)
    with RunningServer(settings) as server:
        yield server
