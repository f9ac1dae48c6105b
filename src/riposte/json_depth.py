"""The nesting limit of request bodies, checked right after parsing.

orjson parses 1024 levels but serializes only 254, and a request's values end up nested a few
levels deeper in what Riposte sends upstream and stores. Without a limit, a body nested a few
hundred levels deep passed validation and then failed while being written: a 500, or a stream
that stopped with nothing stored. Checking at parse time turns it into a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from riposte.errors import InvalidRequestError

DEFAULT_MAX_JSON_DEPTH = 64
# What the setting may be raised to: stored responses and upstream bodies wrap a request's values
# in up to about 10 more levels, and orjson serializes at most 254.
MAX_JSON_DEPTH_CEILING = 200


def check_depth(data: Any, limit: int) -> None:
    """A 400 naming the first value nested deeper than `limit` levels (the body itself is level 1).

    Iterative, so a hostile body cannot exhaust the interpreter's stack, and it visits containers
    only: a body of a few huge strings costs next to nothing.
    """
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(data, 1, ())]
    while pending:
        value, depth, path = pending.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    raise _too_deep((*path, key), limit)
                pending.append((child, depth + 1, (*path, key)))


def _too_deep(path: tuple[str | int, ...], limit: int) -> InvalidRequestError:
    param = ""
    for step in path:
        param = f"{param}[{step}]" if isinstance(step, int) else f"{param}.{step}" if param else str(step)
    return InvalidRequestError(
        f"'{param}' is nested more than {limit} levels deep; flatten the value or raise max_json_depth.",
        param=param, code="nesting_too_deep",
    )
