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

# Pydantic's errors for a value of the wrong JSON type, and the type each one wanted.
_EXPECTED_TYPES = {
    "string_type": "a string", "list_type": "an array", "dict_type": "an object", "model_type": "an object",
    "model_attributes_type": "an object", "int_type": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "a boolean", "bool_parsing": "a boolean",
}
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
    path, _, _ = _walk(location, data, prefix)
    if error_type == "missing" and location and isinstance(location[-1], str) and not _in_data(location, data):
        path = join(path, location[-1])
    if error_type in _TAG_ERRORS:
        path = join(path, "type")
    return path or "body"


def _walk(location: Sequence[str | int], data: Any, prefix: str) -> tuple[str, Any, int]:
    """The client's path along `location`, the value found there, and how many steps it took."""
    path, current, steps = prefix, data, 0
    for step in location:
        if isinstance(step, int) and isinstance(current, list) and 0 <= step < len(current):
            path, current, steps = f"{path}[{step}]", current[step], steps + 1
        elif isinstance(step, str) and isinstance(current, dict) and step in current:
            path, current, steps = join(path, step), current[step], steps + 1
    return path, current, steps


def _in_data(location: Sequence[str | int], data: Any) -> bool:
    parent = _walk(location[:-1], data, "")[1]
    return isinstance(parent, dict) and location[-1] in parent


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def invalid_value(exc: ValidationError, data: Any, param: str = "") -> InvalidRequestError:
    """The first error of `exc`, validating `data`, as a 400 naming its JSON path below `param`."""
    errors = exc.errors(include_url=False)
    error = errors[0]
    if error.get("type") in _EXPECTED_TYPES:
        # A union reports an error per member, the first member's first: the member that got
        # furthest into the value (an array whose element is wrong) says the most.
        walked = [(each, *_walk(each.get("loc", ()), data, param)) for each in errors]
        error, path, value, _ = max(walked, key=lambda entry: entry[3])
        if error.get("type") in _EXPECTED_TYPES:
            return _invalid_type(walked, path, value)
    kind = error.get("type", "")
    path = error_param(error.get("loc", ()), data, param, kind)
    if kind == "extra_forbidden":
        return InvalidRequestError(f"Unknown parameter: '{path}'.", param=path, code="unknown_parameter")
    if kind == "missing":
        return InvalidRequestError(f"Missing required parameter: '{path}'.", param=path,
                                   code="missing_required_parameter")
    if kind == "union_tag_not_found":
        # pydantic's "Unable to extract tag using discriminator ..." names our function, not the API.
        _, value, _ = _walk(error.get("loc", ()), data, param)
        got = _json_type(value.get("type")) if isinstance(value, dict) else f"{_json_type(value)} in place of an object"
        return InvalidRequestError(f"Invalid value for '{path}': expected a string naming the type, but got {got} "
                                   "instead.", param=path, code="invalid_value")
    message = error.get("msg", "invalid").removeprefix("Value error, ")
    return InvalidRequestError(f"Invalid value for '{path}': {message}.", param=path, code="invalid_value")


def _invalid_type(walked: Sequence[tuple[Any, str, Any, int]], path: str, value: Any) -> InvalidRequestError:
    """A value of the wrong JSON type, as OpenAI words it: every type the field at `path` takes (a
    union such as `input`, a string or an array, reports one error per member) and the type it got.
    `walked`: each error with its client path, the value there and the steps it took."""
    expected = list(dict.fromkeys(_EXPECTED_TYPES[error["type"]] for error, at, _, _ in walked
                                  if at == path and error.get("type") in _EXPECTED_TYPES))
    wanted = expected[0] if len(expected) == 1 else "one of " + " or ".join(expected)
    path = path or "body"
    return InvalidRequestError(f"Invalid type for '{path}': expected {wanted}, but got {_json_type(value)} instead.",
                               param=path, code="invalid_type")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
