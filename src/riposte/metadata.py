"""Limits on the `metadata` maps that responses, conversations and vector stores carry."""

from __future__ import annotations


def metadata_within_limits(value: dict[str, str] | None) -> dict[str, str] | None:
    """OpenAI's metadata limits, as a pydantic field validator body (raises ValueError)."""
    if value is None:
        return value
    if len(value) > 16:
        raise ValueError("metadata may hold at most 16 keys")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"metadata key '{key[:20]}...' is longer than 64 characters")
        if len(item) > 512:
            raise ValueError(f"metadata value for '{key}' is longer than 512 characters")
    return value
