"""The small bench modules' sections of bench/RESULTS.md survive each other and a full re-render."""

from __future__ import annotations

from pathlib import Path

from bench import sections


def test_sections_are_replaced_in_place_and_carried_over(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark\n\nheadline table\n")
    sections.write(results, "storage-growth", "## Storage\n| a |\n", {"before": [[0, 1, 2]]})
    sections.write(results, "event-loop", "## Loop\n", {"after": 1})
    sections.write(results, "storage-growth", "## Storage\n| a |\n| b |\n", {"before": [[0, 1, 2]], "after": []})

    assert sections.data(results, "storage-growth") == {"before": [[0, 1, 2]], "after": []}
    assert sections.data(results, "event-loop") == {"after": 1}
    assert sections.data(results, "missing") is None
    text = results.read_text()
    assert text.index("## Storage") < text.index("## Loop") and text.count("## Storage") == 1

    rerendered = "# Benchmark\n\nnew headline\n" + sections.kept(results)
    results.write_text(rerendered)
    assert sections.data(results, "storage-growth") == {"before": [[0, 1, 2]], "after": []}
    assert "| b |" in results.read_text() and "## Loop" in results.read_text()
