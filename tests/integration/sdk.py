"""Small helpers for driving a running server with the official SDK."""

from __future__ import annotations

from typing import Any

import openai

from riposte.testing.server import RunningServer


def sdk(server: RunningServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=30, **kwargs)


def stream_events(server: RunningServer, **params: Any) -> list[Any]:
    return list(sdk(server).responses.create(stream=True, **params))
