"""The `guardrails` section of the server configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GuardType = Literal["moderations", "llama_guard"]
OnError = Literal["fail_closed", "fail_open"]


class GuardConfig(BaseModel):
    """One named guardrail: a moderation endpoint or a guard model, reached through a provider."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    # `moderations`: the provider's POST /v1/moderations (OpenAI's moderation API shape).
    # `llama_guard`: a guard model over chat completions, prompted in Llama Guard's format.
    type: GuardType
    # A model id as requests name one (`provider/model`), so the same routing and credentials apply.
    model: str = Field(min_length=1)
    # A guard that cannot answer (down, erroring, malformed answer) fails the response by default;
    # `fail_open` lets the text through, logged and counted.
    on_error: OnError = "fail_closed"
    # llama_guard only: the categories shown to the model, code -> description; None: Llama Guard 3's.
    categories: dict[str, str] | None = None


class GuardrailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guards: list[GuardConfig] = Field(default_factory=list)
    # Applied to every request, whatever it asks for; a request can add others by name.
    default: list[str] = Field(default_factory=list)
    # Output moderation: a check runs once this many new characters are held back...
    window_chars: int = Field(default=200, ge=1, le=100_000)
    # ...and the last this-many checked characters stay held, to be checked again with what follows,
    # so an unsafe phrase of up to this length split across two windows is never partly released.
    overlap_chars: int = Field(default=64, ge=0, le=100_000)
    # The most text one guard call reads: a longer input (or an answer chunk bigger than a window)
    # is read in pieces of this size that overlap by `overlap_chars`, so long conversations stay
    # within a guard model's context (Llama Guard 3: 8k tokens, with the prompt).
    max_check_chars: int = Field(default=8_000, ge=100, le=1_000_000)

    @model_validator(mode="after")
    def _consistent(self) -> GuardrailSettings:
        names = [guard.name for guard in self.guards]
        if len(set(names)) != len(names):
            raise ValueError(f"guardrail names must be unique, got {names}")
        unknown = [name for name in self.default if name not in names]
        if unknown:
            raise ValueError(f"guardrails.default names {unknown}, which are not among the guards {names}")
        if self.overlap_chars >= self.window_chars:
            raise ValueError("guardrails.overlap_chars must be smaller than guardrails.window_chars")
        if self.overlap_chars >= self.max_check_chars:
            raise ValueError("guardrails.overlap_chars must be smaller than guardrails.max_check_chars")
        return self

    def guard(self, name: str) -> GuardConfig | None:
        for guard in self.guards:
            if guard.name == name:
                return guard
        return None
