"""Validation errors as 400s that name the client's JSON path, e.g. `input[0].content[1].text`.

Pydantic's error locations mix the fields a client wrote with labels of its own (union members
such as `str` or `list[...]`, the tags of discriminated unions). Walking the validated data along
the location tells them apart: a step that exists in the data is the client's, anything else is a
label, except the last step of a `missing` error, which names the absent field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError

from riposte.errors import InvalidRequestError

# Errors that belong to the value's `type` field rather than to the value itself.
_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})
_CONTROL_CHARACTERS = frozenset(chr(code) for code in (*range(0x20), 0x7F))


def has_control_characters(value: str) -> bool:
    return not _CONTROL_CHARACTERS.isdisjoint(value)


def _without_control_characters(value: str) -> str:
    # NUL above all: PostgreSQL cannot store or even compare it in a text column, SQLite can;
    # refused for both, so both answer alike.
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Ids and names: no control characters at all.
printable = AfterValidator(_without_control_characters)
# Free text stored in a plain text column (not inside a JSON document, where NUL is escaped).
without_nul = AfterValidator(_without_nul)
Name = Annotated[str, Field(min_length=1, max_length=256), printable]


def error_param(location: Sequence[str | int], data: Any, prefix: str = "", error_type: str = "") -> str:
    """`prefix` joined with the steps of `location` that are the client's."""
    path = prefix
    current = data
    last = len(location) - 1
    for index, step in enumerate(location):
        if isinstance(step, int) and isinstance(current, list) and 0 <= step < len(current):
            path, current = f"{path}[{step}]", current[step]
        elif isinstance(step, str) and isinstance(current, dict) and step in current:
            path, current = join(path, step), current[step]
        elif index == last and error_type == "missing" and isinstance(step, str):
            path = join(path, step)
    if error_type in _TAG_ERRORS:
        path = join(path, "type")
    return path or "body"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def invalid_value(exc: ValidationError, data: Any, param: str = "") -> InvalidRequestError:
    """The first error of `exc`, validating `data`, as a 400 naming its JSON path below `param`."""
    error = exc.errors(include_url=False)[0]
    kind = error.get("type", "")
    path = error_param(error.get("loc", ()), data, param, kind)
    if kind == "extra_forbidden":
        return InvalidRequestError(f"Unknown parameter: '{path}'.", param=path, code="unknown_parameter")
    if kind == "missing":
        return InvalidRequestError(f"Missing required parameter: '{path}'.", param=path,
                                   code="missing_required_parameter")
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    return InvalidRequestError(f"Invalid value for '{path}': {message}.", param=path, code="invalid_value")
