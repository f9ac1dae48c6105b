"""A response's cost from its usage and the configured price table (inspector.prices)."""

from __future__ import annotations

from typing import Any

from riposte.ui.settings import ModelPrice

_PER = 1_000_000


def response_cost(model: str, usage: dict[str, Any] | None, prices: dict[str, ModelPrice]) -> float | None:
    """US dollars, or None when the model has no price or the response has no usage."""
    price = prices.get(model)
    if price is None or not usage:
        return None
    input_tokens = int(usage.get("input_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    return ((input_tokens - cached) * price.input + cached * cached_price + output_tokens * price.output) / _PER


def cost_text(cost: float | None) -> str:
    if cost is None:
        return "unknown"
    return f"${cost:.6f}" if cost < 0.01 else f"${cost:.4f}"
