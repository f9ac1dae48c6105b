"""Compiling a parsed filter into a SQL condition over a JSON `attributes` column.

Both dialects give the same, type-aware meaning:
- a comparison with a key the attributes lack is false (also for `ne` and `nin`);
- values only equal values of their own JSON type (`"5"` is not `5`, `true` is not `1`);
- orderings compare numbers with numbers and strings with strings, by code point.
Every key and value is a bound parameter; nothing from the request is spliced into the SQL.
"""

from __future__ import annotations

from typing import Any

import orjson

from riposte.vectors.filters import Comparison, Compound, Filter, ListValue

_OPERATORS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class _Params:
    def __init__(self, prefix: str) -> None:
        self.values: dict[str, Any] = {}
        self._prefix = prefix

    def add(self, value: Any) -> str:
        name = f"{self._prefix}{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def compile_sqlite(filter_: Filter, column: str = "attributes") -> tuple[str, dict[str, Any]]:
    params = _Params("f")
    return _SqliteCompiler(column, params).compile(filter_), params.values


def compile_postgres(filter_: Filter, column: str = "attributes") -> tuple[str, dict[str, Any]]:
    params = _Params("f")
    return _PostgresCompiler(column, params).compile(filter_), params.values


class _Compiler:
    def __init__(self, column: str, params: _Params) -> None:
        self.column = column
        self.params = params

    def compile(self, filter_: Filter) -> str:
        if isinstance(filter_, Compound):
            joiner = " AND " if filter_.op == "and" else " OR "
            return "(" + joiner.join(self.compile(child) for child in filter_.filters) + ")"
        return self.comparison(filter_)

    def comparison(self, comparison: Comparison) -> str:
        op = comparison.op
        if op in ("in", "nin"):
            assert isinstance(comparison.value, tuple)
            member = self.membership(comparison.key, comparison.value)
            return member if op == "in" else f"({self.present(comparison.key)} AND NOT {member})"
        assert not isinstance(comparison.value, tuple)
        if op == "ne":
            equal = self.compare(comparison.key, "eq", comparison.value)
            return f"({self.present(comparison.key)} AND NOT {equal})"
        return self.compare(comparison.key, op, comparison.value)

    def present(self, key: str) -> str:
        raise NotImplementedError

    def compare(self, key: str, op: str, value: str | int | float | bool) -> str:
        raise NotImplementedError

    def membership(self, key: str, values: ListValue) -> str:
        raise NotImplementedError


class _SqliteCompiler(_Compiler):
    def _path(self, key: str) -> str:
        return self.params.add(f'$."{key}"')

    def present(self, key: str) -> str:
        return f"(json_type({self.column}, {self._path(key)}) IS NOT NULL)"

    def compare(self, key: str, op: str, value: str | int | float | bool) -> str:
        path = self._path(key)
        kind = f"json_type({self.column}, {path})"
        if isinstance(value, bool):
            return f"({kind} = {self.params.add('true' if value else 'false')})"
        extracted = f"json_extract({self.column}, {path})"
        types = "('text')" if isinstance(value, str) else "('integer', 'real')"
        return f"({kind} IN {types} AND {extracted} {_OPERATORS[op]} {self.params.add(value)})"

    def membership(self, key: str, values: ListValue) -> str:
        alternatives = []
        for types, group in (("('text')", [v for v in values if isinstance(v, str)]),
                             ("('integer', 'real')", [v for v in values if not isinstance(v, str)])):
            if group:
                path = self._path(key)
                listed = ", ".join(self.params.add(v) for v in group)
                alternatives.append(f"(json_type({self.column}, {path}) IN {types} "
                                    f"AND json_extract({self.column}, {path}) IN ({listed}))")
        return "(" + " OR ".join(alternatives) + ")"


class _PostgresCompiler(_Compiler):
    def _value(self, key: str) -> str:
        return f"({self.column} -> CAST({self.params.add(key)} AS text))"

    def present(self, key: str) -> str:
        return f"({self._value(key)} IS NOT NULL)"

    def compare(self, key: str, op: str, value: str | int | float | bool) -> str:
        if op == "eq" or isinstance(value, bool):
            return f"({self._value(key)} = CAST({self.params.add(orjson.dumps(value).decode())} AS jsonb))"
        if isinstance(value, str):
            # COLLATE "C": code-point order, whatever the database's locale, as SQLite compares.
            text = f"({self.column} ->> CAST({self.params.add(key)} AS text))"
            return (f"(jsonb_typeof({self._value(key)}) = 'string' AND "
                    f"{text} COLLATE \"C\" {_OPERATORS[op]} CAST({self.params.add(value)} AS text) COLLATE \"C\")")
        return (f"(jsonb_typeof({self._value(key)}) = 'number' AND "
                f"{self._value(key)} {_OPERATORS[op]} CAST({self.params.add(orjson.dumps(value).decode())} AS jsonb))")

    def membership(self, key: str, values: ListValue) -> str:
        listed = self.params.add(orjson.dumps(list(values)).decode())
        return f"(CAST({listed} AS jsonb) @> jsonb_build_array({self._value(key)}))"
