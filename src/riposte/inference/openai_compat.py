"""A live OpenAI-compatible backend, reached through one shared `AsyncOpenAI` connection pool."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
import orjson

from riposte.config import ProviderConfig
from riposte.errors import UpstreamError
from riposte.inference.upstream import JSON

# Keys the SDK's `chat.completions.create` signature takes directly; everything else rides in
# `extra_body` so that backend-specific fields (vLLM's `guided_choice`, ...) pass through untouched.
_SDK_CHAT_KEYS = frozenset({"model", "messages", "stream"})


class OpenAICompatibleUpstream:
    def __init__(self, provider: ProviderConfig) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.resolved_api_key(),
            timeout=provider.timeout_seconds,
            max_retries=0,
        )

    async def stream_chat(self, body: JSON) -> AsyncGenerator[JSON]:
        kwargs = _sdk_kwargs(body)
        try:
            async with self._client.chat.completions.with_streaming_response.create(**kwargs) as raw:
                async for line in raw.iter_lines():
                    chunk = _parse_sse_line(line)
                    if chunk is not None:
                        yield chunk
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc
        except (httpx2.HTTPError, OSError) as exc:  # transport errors while reading the raw stream
            raise UpstreamError(f"upstream connection failed: {exc}") from exc

    async def chat(self, body: JSON) -> JSON:
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**_sdk_kwargs(body))
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc
        parsed: JSON = orjson.loads(raw.content)
        return parsed

    async def embeddings(self, body: JSON) -> JSON:
        try:
            raw = await self._client.embeddings.with_raw_response.create(
                model=body["model"], input=body["input"], extra_body=_without(body, {"model", "input"})
            )
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APIError as exc:
            raise UpstreamError(f"upstream request failed: {exc}") from exc
        parsed: JSON = orjson.loads(raw.content)
        return parsed

    async def list_models(self) -> list[str]:
        try:
            page = await self._client.models.list()
        except openai.APIError as exc:
            raise UpstreamError(f"upstream model listing failed: {exc}") from exc
        return [model.id for model in page.data]

    async def aclose(self) -> None:
        await self._client.close()


def _sdk_kwargs(body: JSON) -> dict[str, Any]:
    kwargs: dict[str, Any] = {k: v for k, v in body.items() if k in _SDK_CHAT_KEYS}
    extra = _without(body, _SDK_CHAT_KEYS)
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _without(body: JSON, keys: frozenset[str] | set[str]) -> JSON:
    return {k: v for k, v in body.items() if k not in keys}


def _parse_sse_line(line: str) -> JSON | None:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    chunk: JSON = orjson.loads(data)
    if "error" in chunk and "choices" not in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        raise UpstreamError(f"upstream stream error: {error.get('message', error)}", code=error.get("code"))
    return chunk


def _status_error(exc: openai.APIStatusError) -> UpstreamError:
    status = exc.status_code
    # A client mistake the backend caught is still the client's mistake; anything else is ours.
    mapped = status if status in (400, 404, 413, 422, 429) else 502
    return UpstreamError(f"upstream returned {status}: {exc.message}", status_code=mapped)
