"""bench/RESULTS.md names how fast the host runs plain Python, so runs on different hosts compare."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report
from bench.run import interpreter_speed_us

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_results_name_the_interpreter_speed_of_both_runs() -> None:
    after = json.loads((BENCH / "results.json").read_text())
    before = json.loads((BENCH / "before-20b476a.json").read_text())
    after["meta"]["machine"]["sum_range_1000_us"] = 9.66
    before["meta"]["machine"]["sum_range_1000_us"] = 9.81
    text = report.render(after, before)
    assert "- interpreter speed: `sum(range(1000))` takes 9.7 us" in text
    assert "`sum(range(1000))` took 9.8 us before and 9.7 us after." in text


def test_runs_recorded_without_it_render_as_before() -> None:
    after = json.loads((BENCH / "results.json").read_text())
    after["meta"]["machine"].pop("sum_range_1000_us", None)
    text = report.render(after, json.loads((BENCH / "before-20b476a.json").read_text()))
    assert "interpreter speed" not in text and "took" not in text.split("## Before and after")[1].split("|")[0]


def test_the_interpreter_speed_is_a_plausible_figure() -> None:
    assert 0.5 < interpreter_speed_us() < 500
