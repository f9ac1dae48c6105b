"""`python -m bench.pairs`: naming the contenders, the order of each round, the summary."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from bench.pairs import Contender, Row, parse_contender, round_order, summary
from bench.servers import riposte_settings

from riposte.config import Settings


def test_a_contender_names_a_tree_and_settings_of_its_own() -> None:
    assert parse_contender("before=/tmp/b/src") == Contender("before", Path("/tmp/b/src"))
    assert parse_contender("after=") == Contender("after", None)
    wide = parse_contender("wide=src:paced_read_window_ms=40,stream_resume=true")
    assert wide == Contender("wide", Path("src"), {"paced_read_window_ms": 40, "stream_resume": True})


def test_a_contenders_settings_go_where_they_belong_and_load() -> None:
    written = riposte_settings("http://127.0.0.1:1/v1", {"paced_read_window_ms": 40, "stream_resume": True})
    assert written["providers"][0]["paced_read_window_ms"] == 40  # a provider's own setting
    settings = Settings(**written)  # refused, as an unknown field, at the top level
    assert settings.stream_resume is True and settings.providers[0].paced_read_window_ms == 40


@pytest.mark.parametrize("spec", ["nosrc", "=src", "x=src:window=[1"])
def test_a_malformed_contender_is_refused(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_contender(spec)


def test_rounds_alternate_the_order_so_neither_side_always_goes_first() -> None:
    a, b = Contender("a", None), Contender("b", None)
    orders = [[c.name for c in round_order([a, b], number)] for number in range(4)]
    assert orders == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]


def test_the_summary_gives_medians_and_counts_failures() -> None:
    rows = [Row(100, 2.0, 4.0, 30.0, 0, 0, 0), Row(300, 6.0, 9.0, 50.0, 1, 0, 0), Row(200, None, None, None, 2, 0, 0)]
    assert summary(rows) == "median 200 deltas/s, TTFT p50 4.0 ms, CPU 40.0 us/token over 3 runs, 3 failed"
