"""Client URLs inside a request's input (`input_image.image_url`) under the outbound policy.

`forward` (the default) sends the URL on to the backend as before, once the policy allows it.
`inline` has the server fetch it, through the same policy (every redirect checked again), and
send the backend a data URL instead, so a backend never fetches a URL a client chose.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field

from riposte.errors import InvalidRequestError
from riposte.outbound import OutboundPolicy

_MAX_REDIRECTS = 3


class InputUrlSettings(BaseModel):
    """Settings `input_urls.*`."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["forward", "inline"] = "forward"
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0)


Fetch = Callable[[str, str], Awaitable[str]]


async def govern_input_urls(value: str | list[dict[str, Any]] | None, policy: OutboundPolicy,
                            settings: InputUrlSettings) -> None:
    """Check (forward) or inline (inline) every http(s) image URL of the input, in place."""
    if not isinstance(value, list):
        return
    fetch = _Inliner(policy, settings).data_url if settings.mode == "inline" else None
    for index, item in enumerate(value):
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, list):
            continue
        for position, part in enumerate(content):
            url = part.get("image_url") if isinstance(part, dict) and part.get("type") == "input_image" else None
            if not isinstance(url, str):
                continue
            param = f"input[{index}].content[{position}].image_url"
            scheme = url.partition(":")[0].lower()
            if scheme == "data":
                continue
            if scheme not in ("http", "https"):
                # A backend may read other schemes itself (file: on the backend's own disk), outside
                # the outbound policy; OpenAI takes these two forms only.
                raise InvalidRequestError(
                    f"Invalid 'image_url': expected an http(s) URL or a base64 data URL, got {_shown(url)}.",
                    param=param, code="invalid_image_url")
            await policy.check(url, param)
            if fetch is not None:
                part["image_url"] = await fetch(url, param)


class _Inliner:
    def __init__(self, policy: OutboundPolicy, settings: InputUrlSettings) -> None:
        self._policy = policy
        self._settings = settings

    async def data_url(self, url: str, param: str) -> str:
        """The image at `url` as a data URL; a 400 naming `param` when it cannot be fetched."""
        timeout = httpx.Timeout(self._settings.timeout_seconds)
        # No proxies from the environment, no automatic redirects: each hop passes the policy.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                try:
                    body, content_type, location = await self._get(client, url)
                except httpx.HTTPError as exc:
                    raise _unfetchable(url, param, str(exc) or type(exc).__name__) from exc
                if location is None:
                    return _as_data_url(body, content_type, url, param)
                url = urljoin(url, location)
                await self._policy.check(url, param)
        raise _unfetchable(url, param, f"more than {_MAX_REDIRECTS} redirects")

    async def _get(self, client: httpx.AsyncClient, url: str) -> tuple[bytes, str, str | None]:
        async with client.stream("GET", url) as reply:
            if reply.is_redirect and "location" in reply.headers:
                return b"", "", reply.headers["location"]
            reply.raise_for_status()
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > self._settings.max_bytes:
                    raise httpx.HTTPError(f"larger than {self._settings.max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks), reply.headers.get("content-type", ""), None


def _as_data_url(body: bytes, content_type: str, url: str, param: str) -> str:
    media_type = content_type.partition(";")[0].strip().lower()
    if not media_type.startswith("image/"):
        raise _unfetchable(url, param, f"it is not an image (Content-Type '{media_type or 'none'}')")
    return f"data:{media_type};base64,{base64.b64encode(body).decode()}"


def _unfetchable(url: str, param: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"The image at '{url}' could not be fetched: {reason}.", param=param,
                               code="invalid_image_url")


def _shown(url: str) -> str:
    return repr(url if len(url) <= 80 else url[:77] + "...")
