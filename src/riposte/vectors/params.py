"""Validation errors for nested request parameters, naming the full parameter path."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from riposte.errors import InvalidRequestError


def invalid(param: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {reason}.", param=param, code="invalid_value")


def only_keys(raw: dict[str, Any], allowed: Iterable[str], param: str) -> None:
    known = set(allowed)
    for name in raw:
        if name not in known:
            raise InvalidRequestError(f"Unknown parameter: '{param}.{name}'.", param=f"{param}.{name}",
                                      code="unknown_parameter")
