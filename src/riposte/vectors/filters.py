"""Attribute filters as the `openai` SDK defines them (`ComparisonFilter`, `CompoundFilter`).

Parsing is pure and strict: a malformed filter is a 400 naming the exact parameter. Each index
compiles the parsed filter into its own SQL (filter_sql.py), so filters run inside the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from riposte.vectors.params import invalid, only_keys

ComparisonOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
CompoundOp = Literal["and", "or"]
Scalar: TypeAlias = str | int | float | bool
ListValue: TypeAlias = tuple[str | int | float, ...]

COMPARISONS: frozenset[str] = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
ORDERINGS: frozenset[str] = frozenset({"gt", "gte", "lt", "lte"})
MAX_DEPTH = 16
MAX_KEY_LENGTH = 64


@dataclass(frozen=True)
class Comparison:
    key: str
    op: ComparisonOp
    value: Scalar | ListValue


@dataclass(frozen=True)
class Compound:
    op: CompoundOp
    filters: tuple[Filter, ...]


Filter: TypeAlias = Comparison | Compound


def parse_filter(raw: Any, param: str = "filters") -> Filter:
    return _parse(raw, param, 0)


def _parse(raw: Any, param: str, depth: int) -> Filter:
    if depth > MAX_DEPTH:
        raise invalid(param, f"filters may nest at most {MAX_DEPTH} levels deep")
    if not isinstance(raw, dict):
        raise invalid(param, "a filter must be an object")
    kind = raw.get("type")
    if kind in ("and", "or"):
        return _parse_compound(raw, kind, param, depth)
    if kind in COMPARISONS:
        return _parse_comparison(raw, kind, param)
    raise invalid(f"{param}.type", f"unknown filter type {kind!r}; use one of "
                   f"{', '.join(sorted(COMPARISONS | {'and', 'or'}))}")


def _parse_compound(raw: dict[str, Any], kind: CompoundOp, param: str, depth: int) -> Compound:
    only_keys(raw, {"type", "filters"}, param)
    children = raw.get("filters")
    if not isinstance(children, list) or not children:
        raise invalid(f"{param}.filters", "a compound filter needs a non-empty list of filters")
    parsed = tuple(_parse(child, f"{param}.filters[{i}]", depth + 1) for i, child in enumerate(children))
    return Compound(op=kind, filters=parsed)


def _parse_comparison(raw: dict[str, Any], kind: ComparisonOp, param: str) -> Comparison:
    only_keys(raw, {"type", "key", "value"}, param)
    key = raw.get("key")
    check_attribute_key(key, f"{param}.key")
    assert isinstance(key, str)
    if "value" not in raw:
        raise invalid(f"{param}.value", "a comparison filter needs a value")
    return Comparison(key=key, op=kind, value=_comparison_value(kind, raw["value"], f"{param}.value"))


def _comparison_value(kind: ComparisonOp, value: Any, param: str) -> Scalar | ListValue:
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise invalid(param, f"'{kind}' needs a non-empty list of strings or numbers")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise invalid(param, f"'{kind}' lists may hold only strings and numbers")
        return tuple(value)
    if kind in ORDERINGS and (isinstance(value, bool) or not isinstance(value, str | int | float)):
        raise invalid(param, f"'{kind}' compares numbers or strings")
    if not isinstance(value, str | int | float | bool):
        raise invalid(param, f"'{kind}' needs a string, number or boolean")
    return value


def check_attribute_key(key: Any, param: str) -> None:
    """Keys become JSON paths inside the index's SQL (always as bound parameters)."""
    if not isinstance(key, str) or not key:
        raise invalid(param, "the key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise invalid(param, f"keys may be at most {MAX_KEY_LENGTH} characters long")
    if '"' in key or "\\" in key:
        raise invalid(param, "keys may not contain double quotes or backslashes")

