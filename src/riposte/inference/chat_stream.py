"""Streamed chat completions over aiohttp: the one upstream call that sits on every token's path.

The openai SDK builds each request through its typed-parameter machinery and reads a stream
through a pure-Python HTTP parser and a line iterator several generators deep; measured on the
benchmark machine that cost 20-30 us of CPU per streamed chunk. aiohttp parses HTTP in C and
hands over whole socket reads, which `SseDataDecoder` splits into chunks: about 3 us. The
non-streaming calls, off the hot path, stay on the SDK.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from yarl import URL

from riposte.errors import UpstreamError
from riposte.inference.sse_decoder import SseDataDecoder
from riposte.inference.upstream import JSON
from riposte.observability.request_record import note_upstream_status

# The SDK's own pool limit; aiohttp's default of 100 would queue the 101st concurrent stream.
MAX_CONNECTIONS = 1000
# A client mistake the backend caught is still the client's mistake; anything else is ours.
_CLIENT_STATUSES = frozenset({400, 404, 413, 422, 429})


class ChatStreamClient:
    """One connection pool per upstream, opened on first use inside the serving event loop."""

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float) -> None:
        # Parsed once: aiohttp would parse a string URL again on every request.
        self._url = URL(base_url.rstrip("/") + "/chat/completions")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                         "Accept": "text/event-stream"}
        # Like the SDK's timeout: a bound on connecting and on each wait for data, not on the whole stream.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=timeout_seconds)
        # The proxy the environment names for this URL, as the SDK's client would use; read once,
        # because aiohttp's trust_env would also re-read ~/.netrc on every request.
        self._proxy = environment_proxy(str(self._url))
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                                                  timeout=self._timeout)
        return self._session

    async def stream(self, body: JSON) -> AsyncGenerator[JSON]:
        try:
            async with self._pool().post(self._url, data=orjson.dumps(body), headers=self._headers,
                                         proxy=self._proxy) as response:
                note_upstream_status(response.status)
                if response.status >= 400:
                    raise status_error(response.status, await response.read())
                decoder = SseDataDecoder()
                async for data in response.content.iter_any():
                    for payload in decoder.feed(data):
                        yield parse_chunk(payload)
                for payload in decoder.close():
                    yield parse_chunk(payload)
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream connection failed: {exc}") from exc
        except TimeoutError as exc:
            raise UpstreamError("upstream request failed: timed out waiting for the upstream") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def environment_proxy(url: str) -> str | None:
    host = urlsplit(url).hostname
    if host is None or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(urlsplit(url).scheme)


def parse_chunk(payload: bytes | str) -> JSON:
    chunk: JSON = orjson.loads(payload)
    if "error" in chunk and "choices" not in chunk:
        error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        raise UpstreamError(f"upstream stream error: {error.get('message', error)}", code=error.get("code"))
    return chunk


def status_error(status: int, body: bytes | str | Any) -> UpstreamError:
    """An upstream error status, with the upstream's own message when its body has one."""
    mapped = status if status in _CLIENT_STATUSES else 502
    return UpstreamError(f"upstream returned {status}: {_error_message(body)}", status_code=mapped)


def _error_message(body: bytes | str | Any) -> str:
    parsed = body
    if isinstance(body, bytes | str):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body.decode(errors="replace") if isinstance(body, bytes) else body
            return text.strip()[:500] or "(empty body)"
    # An OpenAI error envelope, or (from the SDK) the error object already taken out of it.
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return orjson.dumps(parsed, default=str).decode()[:500]
