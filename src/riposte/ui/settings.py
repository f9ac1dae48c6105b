"""The `inspector:` section of the settings file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    """US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    # Cached input tokens; the input price when not given.
    cached_input: float | None = Field(default=None, ge=0)


class InspectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Serve the web inspector at /ui.
    enabled: bool = True
    # How long each stored turn's trace (its upstream calls' request bodies and answers, its tool
    # calls) is kept; 0 keeps none and captures none.
    trace_retention_days: float = Field(default=30.0, ge=0)
    # How long a login lasts.
    session_hours: float = Field(default=12.0, gt=0)
    # Prices by model name as clients send it (e.g. "openai/gpt-4o-mini"), for the cost shown per
    # response; a model without a price shows its cost as unknown.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @property
    def captures_traces(self) -> bool:
        return self.trace_retention_days > 0
