"""SIGTERM reaches the server's own handler (uvicorn's graceful shutdown) after the drain
callback, even when that callback fails."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from riposte.api.readiness import on_termination


@pytest.fixture
def handlers() -> Iterator[list[str]]:
    """uvicorn's part, played by a handler that notes its calls; the real handlers come back after."""
    calls: list[str] = []
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in saved:
        signal.signal(signum, lambda number, frame: calls.append(f"server {number}"))
    yield calls
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def _deliver(signum: signal.Signals) -> None:
    handler: Any = signal.getsignal(signum)
    handler(signum, None)


def test_the_drain_runs_before_the_servers_own_handler(handlers: list[str]) -> None:
    on_termination(lambda: handlers.append("drain"))
    _deliver(signal.SIGTERM)
    assert handlers == ["drain", f"server {signal.SIGTERM}"]


def test_a_failing_drain_still_lets_the_server_shut_down(handlers: list[str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    def failing() -> None:
        raise RuntimeError("drain broke")

    on_termination(failing)
    _deliver(signal.SIGINT)
    assert handlers == [f"server {signal.SIGINT}"]
    assert "termination callback failed" in caplog.text
