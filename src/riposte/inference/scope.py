"""The replay scope of the request being served: which recordings to prefer on replay."""

from __future__ import annotations

from contextvars import ContextVar

import orjson

REPLAY_SCOPE_HEADER = "x-riposte-replay-scope"
# The seed system's convention: a JSON header whose `__test_id` key names the test.
SEED_PROVIDER_DATA_HEADER = "x-llamastack-provider-data"

replay_scope: ContextVar[str | None] = ContextVar("riposte_replay_scope", default=None)


def scope_from_headers(headers: dict[str, str]) -> str | None:
    """Read the scope from a request's (lower-cased) headers."""
    scope = headers.get(REPLAY_SCOPE_HEADER)
    if scope:
        return scope
    provider_data = headers.get(SEED_PROVIDER_DATA_HEADER)
    if not provider_data:
        return None
    try:
        parsed = orjson.loads(provider_data)
    except orjson.JSONDecodeError:
        return None
    test_id = parsed.get("__test_id") if isinstance(parsed, dict) else None
    return test_id if isinstance(test_id, str) and test_id else None
