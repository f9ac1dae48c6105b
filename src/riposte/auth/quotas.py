"""Limits checked against a request's content, where the middleware cannot see: input items per
request and file storage per project."""

from __future__ import annotations

from typing import Any

from riposte.auth.principal import current_principal
from riposte.errors import RateLimitError


def check_input_items(value: Any) -> None:
    """A 429 when the request's `input` holds more items than the caller's key allows."""
    limit = current_principal.get().limits.max_input_items
    count = len(value) if isinstance(value, list) else 1
    if limit is not None and count > limit:
        # Retrying the same request will not help, but the envelope is the one every limit uses.
        raise RateLimitError(f"This key allows at most {limit} input items per request; got {count}.",
                             retry_after=1, param="input")
