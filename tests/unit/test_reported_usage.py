"""A backend's `usage` is taken only where its counts are counts: otherwise it counts as
unreported (the turn estimates it) rather than failing the answer or the stored row."""

from __future__ import annotations

from typing import Any

import pytest

from riposte.engine.usage import reported_usage, usage_from_chunk


def test_a_well_formed_usage_keeps_its_counts_and_details() -> None:
    raw = {"prompt_tokens": 12, "completion_tokens": 3.0, "total_tokens": 15, "extra": "ignored",
           "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": 2}}
    usage = reported_usage(raw)
    assert usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                     "prompt_tokens_details": {"cached_tokens": 4},
                     "completion_tokens_details": {"reasoning_tokens": 2}}
    assert usage_from_chunk(usage).as_response_usage()["input_tokens_details"]["cached_tokens"] == 4


def test_absent_counts_are_zero() -> None:
    assert reported_usage({"prompt_tokens": 7, "completion_tokens": None}) == {
        "prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}


@pytest.mark.parametrize("bad", [-5, 2**64, 2**53, "many", 1.5, True, [3], float("nan")])
def test_token_counts_that_are_not_counts_make_the_usage_unreported(bad: Any) -> None:
    assert reported_usage({"prompt_tokens": bad, "completion_tokens": 2}) is None
    assert reported_usage({"prompt_tokens": 2, "completion_tokens": bad}) is None


def test_detail_counts_that_are_not_counts_are_left_out() -> None:
    usage = reported_usage({"prompt_tokens": 2, "completion_tokens": 2, "prompt_tokens_details": "x",
                            "completion_tokens_details": {"reasoning_tokens": -1}})
    assert usage == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
