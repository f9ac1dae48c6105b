"""Settings of the servers the context tests (compaction, truncation) run against: models with
small context windows. Set `SERVER_SETTINGS = CONTEXT_SETTINGS` in a module that uses the
fixtures of `tests.integration.module_servers`."""

from __future__ import annotations

from typing import Any

# `fake/small` (and `gpt-4.1`, which the Agents SDK's compaction insists on) read at most 600
# tokens; compaction summaries may be 64 tokens long.
WINDOW = 600
CONTEXT_SETTINGS: dict[str, Any] = {
    "context": {"windows": {"small": WINDOW, "gpt-4.1": WINDOW}, "summary_max_tokens": 64},
}
