"""Which guardrails a request names: `guardrails` (Riposte's field) and `shields` (the seed
system's extra-body field), each a list of names or `{"type": name}` objects."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from riposte.errors import InvalidRequestError


def requested_guardrails(guardrails: Sequence[Any] | None, shields: Sequence[Any] | None,
                         known: Collection[str]) -> list[str]:
    names: list[str] = []
    for param, entries in (("guardrails", guardrails), ("shields", shields)):
        for index, entry in enumerate(entries or ()):
            name = _entry_name(entry, f"{param}[{index}]")
            if name not in known:
                listed = ", ".join(sorted(known)) or "none are configured"
                raise InvalidRequestError(f"Unknown guardrail '{name}'. This server's guardrails: {listed}.",
                                          param=f"{param}[{index}]", code="unknown_guardrail")
            if name not in names:
                names.append(name)
    return names


def _entry_name(entry: Any, param: str) -> str:
    if isinstance(entry, dict):
        if set(entry) != {"type"}:
            raise InvalidRequestError("A guardrail object has exactly one key, 'type', naming the guardrail.",
                                      param=param, code="invalid_value")
        entry, param = entry["type"], f"{param}.type"
    if not isinstance(entry, str) or not entry:
        raise InvalidRequestError("A guardrail is named by a non-empty string.", param=param, code="invalid_value")
    return entry
