"""Validation errors as 400s naming the client's JSON path, worded as OpenAI words them."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ValidationError

from riposte.errors import InvalidRequestError
from riposte.param_path import invalid_value


class _Body(BaseModel):
    # A union like `input`: a string, or a list whose elements are checked too.
    field: str | list[Literal["x", "y"]] = "x"
    count: int = 0


def _error(data: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate(data)
    return invalid_value(caught.value, data)


def test_a_union_names_every_type_it_takes_and_the_type_it_got() -> None:
    error = _error({"field": 5})
    assert (error.param, error.code) == ("field", "invalid_type")
    assert str(error) == "Invalid type for 'field': expected one of a string or an array, but got an integer instead."


def test_the_member_that_got_furthest_names_the_element_even_when_its_error_is_not_a_type() -> None:
    # The string member fails first ("should be a valid string"), but the list member reached
    # the element: that element's own error is the one that helps.
    error = _error({"field": ["z"]})
    assert (error.param, error.code) == ("field[0]", "invalid_value")
    assert "'x' or 'y'" in str(error)


def test_a_plain_field_of_the_wrong_type() -> None:
    error = _error({"count": [1]})
    assert str(error) == "Invalid type for 'count': expected an integer, but got an array instead."
