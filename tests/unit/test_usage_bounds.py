"""Local token counting is bounded: a huge input costs a fixed amount of tokenizing, and the
estimate stays close to an exact count."""

from __future__ import annotations

import pytest

from riposte.engine import usage


def prose(chars: int) -> str:
    return ("The lighthouse keeper counted ships until dawn, " * (chars // 48 + 1))[:chars]


def test_short_texts_are_counted_exactly() -> None:
    text = prose(usage.EXACT_COUNT_CHARS)
    assert usage.sampled_token_count(text) == usage.count_tokens(text)


def test_a_long_text_is_estimated_within_a_few_percent() -> None:
    text = prose(usage.EXACT_COUNT_CHARS * 8)
    exact = usage.count_tokens(text)
    assert abs(usage.sampled_token_count(text) - exact) <= exact * 0.03


def test_a_25_mib_input_tokenizes_no_more_than_the_exact_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[int] = []
    real = usage.count_tokens

    def counting(text: str) -> int:
        counted.append(len(text))
        return real(text)

    monkeypatch.setattr(usage, "count_tokens", counting)
    huge = "x" * (25 * 1024 * 1024)  # one 25 MiB word: the slowest text there is to tokenize
    estimate = usage.estimated_usage([{"role": "user", "content": huge}], "fine", "")
    assert sum(counted) <= usage.EXACT_COUNT_CHARS + len("fine")
    assert estimate.input_tokens > 1_000_000


async def test_large_estimates_run_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    threads: list[str] = []
    real = usage.estimated_usage

    def recording(*args: object) -> usage.Usage:
        threads.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(usage, "estimated_usage", recording)
    usage.count_tokens("loaded")  # the first count loads the encoding, which always goes to a thread
    await usage.estimated_usage_off_loop([{"role": "user", "content": "hi"}], "ok", "")
    await usage.estimated_usage_off_loop([{"role": "user", "content": prose(usage.INLINE_COUNT_CHARS + 1)}], "ok", "")
    assert threads[0] == threading.current_thread().name
    assert threads[1] != threading.current_thread().name
