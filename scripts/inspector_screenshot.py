"""Regenerate docs/inspector-timeline.png, the README's picture of the inspector's timeline page.

Runs the browser tests' scenario (tests/ui/scenario.py: scripted upstream, real local embedding
model, a file_search turn with a citation) and photographs it with the same headless Chromium
harness (tests/ui/browser.py). From the repository root:

    PYTHONPATH=src python scripts/inspector_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.browser import Browser  # noqa: E402
from tests.ui.conftest import log_in  # noqa: E402
from tests.ui.scenario import running_scenario  # noqa: E402

TARGET = ROOT / "docs" / "inspector-timeline.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as data, running_scenario(Path(data)) as scenario, Browser() as browser:
        log_in(browser, scenario.root, scenario.key)
        browser.goto(f"{scenario.root}/ui/responses/{scenario.search_turn}")
        browser.screenshot(TARGET)
        problems = browser.problems()
        assert not problems, problems
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
