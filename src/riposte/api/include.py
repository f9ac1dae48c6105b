"""The `include` query parameter of item listings, in both spellings clients send."""

from __future__ import annotations

from fastapi import Query

from riposte.engine.item_includes import parse_includes


def requested_includes(
    include: list[str] | None = Query(default=None),
    # The official SDKs encode lists in brackets: `include[]=a&include[]=b`.
    include_brackets: list[str] | None = Query(default=None, alias="include[]"),
) -> frozenset[str]:
    """A FastAPI dependency: the validated includes (an unknown value is a 400 naming it)."""
    return parse_includes([*(include or []), *(include_brackets or [])])
