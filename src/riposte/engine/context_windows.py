"""How many tokens each model can read: per-model context windows, from configuration.

A window is looked up by the model the request names (`provider/model` or just `model`): an
exact entry in `context.windows` first, then the longest configured or built-in family prefix
that the upstream model name starts with, then `context.default_window`. The built-in table
holds the published windows of well-known families; configuration overrides any of them.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

# Published context windows (tokens) of well-known families, matched as name prefixes; the
# longest matching prefix wins, so "gpt-4o" is not read as "gpt-4".
KNOWN_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-5": 400_000,
    "gpt-oss": 131_072,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "llama-3.1": 131_072,
    "llama-3.2": 131_072,
    "llama-3.3": 131_072,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama-4": 1_048_576,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "mistral": 32_768,
    "mixtral": 32_768,
    "gemma-2": 8_192,
    "gemma2": 8_192,
    "gemma-3": 131_072,
    "gemma3": 131_072,
    "deepseek": 131_072,
    "phi-3": 131_072,
    "phi-4": 16_384,
}


class ContextSettings(BaseModel):
    """`context:` in the settings file."""

    model_config = ConfigDict(extra="forbid")

    # Model name (as requested, or the upstream name) or family prefix -> window in tokens.
    windows: dict[str, int] = Field(default_factory=dict)
    # The window of a model no entry matches. Generous, so that an unknown model is not refused
    # input its backend would take; set it (or an entry) to your backend's real limit.
    default_window: int = Field(default=128_000, ge=1)
    # Longest summary a compaction asks the model for (its max output tokens).
    summary_max_tokens: int = Field(default=2_048, ge=16)
    # `/responses/compact` keeps the latest exchange verbatim when it takes at most this share of
    # the window; otherwise only the summary remains.
    keep_share: float = Field(default=0.25, ge=0, le=1)


def context_window(settings: ContextSettings, requested_model: str, upstream_model: str) -> int:
    """The window of the model a request names, in tokens."""
    for name in (requested_model, upstream_model):
        if name in settings.windows:
            return settings.windows[name]
    bare = upstream_model.rsplit("/", 1)[-1].lower()
    return (_by_prefix(settings.windows, bare) or _by_prefix_known(bare)
            or settings.default_window)


def _by_prefix(windows: dict[str, int], name: str) -> int | None:
    matches = [prefix for prefix in windows if name.startswith(prefix.lower())]
    return windows[max(matches, key=len)] if matches else None


# The built-in prefixes, longest first: the first that matches is the longest. Looked up on every
# request, so not re-sorted and lower-cased each time.
_KNOWN_LONGEST_FIRST = sorted(KNOWN_WINDOWS.items(), key=lambda entry: -len(entry[0]))


@lru_cache(maxsize=1024)  # a scan of the table per request was 1% of a request's CPU (bench/RESULTS.md)
def _by_prefix_known(name: str) -> int | None:
    return next((window for prefix, window in _KNOWN_LONGEST_FIRST if name.startswith(prefix)), None)
