"""Credentials never leave in responses, logs or errors: upstream error text is passed on only
after anything that looks like a credential, and every configured upstream key, is masked."""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"

_PATTERNS = re.compile(
    r"(?:\b(?:sk|rsk|pk|ak|xai|gsk|hf)[-_][A-Za-z0-9_\-]{8,})"  # provider-style API keys
    r"|(?:\bBearer\s+[A-Za-z0-9._~+/=\-]{8,})"  # bearer tokens
    r"|(?:\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)"  # JWTs
    r"|(?:(?<=[?&])(?:api[_-]?key|key|token|access_token)=[^&\s\"']+)"  # credentials in query strings
    r"|(?:(?<=\bapi[_-]key['\"]:\s['\"])[^'\"]+)"  # "api_key": "..."
    r"|(?:\bAKIA[0-9A-Z]{16}\b)",  # AWS access key ids
    re.IGNORECASE,
)

_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears (the configured upstream keys)."""
    if value and len(value) >= 6 and value != "none":
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _PATTERNS.sub(MASK, text)
