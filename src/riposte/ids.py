"""Identifier allocation. Every id the server mints comes from here."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """An OpenAI-looking id: `prefix_` plus 48 hex characters."""
    return f"{prefix}_{secrets.token_hex(24)}"


def response_id() -> str:
    return new_id("resp")


def message_id() -> str:
    return new_id("msg")


def function_call_id() -> str:
    return new_id("fc")


def reasoning_id() -> str:
    return new_id("rs")


def call_id() -> str:
    return new_id("call")
