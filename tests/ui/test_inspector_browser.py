"""The web inspector in a real headless Chromium (tests/ui/browser.py), over a server with
authentication on, the scripted upstream and the real local embedding model."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.fakes.scripted_upstream import slow_reply
from tests.ui.browser import Browser
from tests.ui.conftest import log_in
from tests.ui.scenario import Scenario

pytestmark = pytest.mark.timeout(600)


def test_pages_need_a_login_and_a_wrong_key_is_refused(browser: Browser, scenario: Scenario) -> None:
    browser.call("goto", url=f"{scenario.root}/ui/responses?status=completed")
    assert "/ui/login?next=/ui/responses" in browser.url()
    browser.call("fill", selector="#api_key", value="sk-not-a-key")
    browser.call("submit", selector="button[type=submit]")
    assert "Incorrect API key" in browser.text("[role=alert]")
    browser.problems()  # the 401 answer to the form post is logged by Chromium as a failed resource

    browser.call("fill", selector="#api_key", value=scenario.key)
    browser.call("submit", selector="button[type=submit]")
    assert browser.url().endswith("/ui/responses?status=completed")
    assert "project alpha" in browser.text("header")


def test_responses_are_listed_and_filtered(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/responses")
    listed = browser.text("table")
    for response_id in (scenario.search_turn, scenario.failed_turn, scenario.conversation_turn):
        assert response_id in listed
    assert "$0.00" in listed  # fake/planets has a price

    browser.call("fill", selector="#f-q", value="spectacular RINGS")
    browser.call("submit", selector="form.filters button[type=submit]")
    filtered = browser.text("table tbody")
    assert scenario.search_turn in filtered and scenario.failed_turn not in filtered

    browser.goto(f"{scenario.root}/ui/responses?status=failed")
    failed = browser.text("table tbody")
    assert scenario.failed_turn in failed and scenario.search_turn not in failed
    assert "on fire" in failed

    # Paging keeps the filters: completed fake/planets turns, one a page, newest first.
    browser.goto(f"{scenario.root}/ui/responses?status=completed&model=fake/planets&limit=1")
    seen = [browser.text("table tbody tr td a.mono")]
    while browser.count("a:text('Older responses')"):
        browser.call("click", selector="a:text('Older responses')")
        assert browser.count("table tbody tr") == 1 and "completed" in browser.text("table tbody")
        seen.append(browser.text("table tbody tr td a.mono"))
    assert seen.index(scenario.conversation_turn) < seen.index(scenario.search_turn)
    assert scenario.failed_turn not in seen and len(seen) == len(set(seen))

    browser.goto(f"{scenario.root}/ui/responses?conversation={scenario.conversation}")
    assert browser.count("table tbody tr") == 1
    assert scenario.conversation_turn in browser.text("table tbody")


def test_file_search_turn_shows_its_tool_call_and_citation(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/responses")
    browser.call("click", selector=f"a[href='/ui/responses/{scenario.search_turn}']")
    assert browser.url().endswith(f"/ui/responses/{scenario.search_turn}")

    steps = browser.text("section[aria-labelledby=steps-h]")
    assert "1. Upstream call to planets" in steps
    assert "2. Tool call knowledge_search (file_search_call)" in steps
    assert '{"query": "planet rings"}' in steps
    assert "3. Upstream call to planets" in steps
    assert "saturn.txt chunk 0" in steps
    assert browser.count(".step.upstream_call") == 2 and browser.count(".step.tool_call") == 1

    output = browser.text("section[aria-labelledby=output-h]")
    assert "Saturn has the most spectacular rings" in output and "[1]" in output
    href = browser.call("attribute", selector="sup.cite a", name="href")
    assert href.startswith("#source-2-")
    browser.call("click", selector="sup.cite a")
    assert browser.url().endswith(href)
    assert "saturn.txt" in browser.text(href)
    browser.call("click", selector=f"{href} a")  # on to the chunk itself, in its file
    chunk = f"chunk-{scenario.store_id}-0"
    assert browser.url().endswith(f"/ui/files/{scenario.saturn_file}#{chunk}")
    assert "Saturn has the most spectacular rings" in browser.text(f"#{chunk}")
    browser.goto(f"{scenario.root}/ui/responses/{scenario.search_turn}")
    assert "Usage" in browser.text("section[aria-labelledby=summary-h]")
    assert "$0.00" in browser.text("section[aria-labelledby=summary-h]")


def test_failed_turn_shows_the_upstream_error(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/responses/{scenario.failed_turn}")
    assert "failed" in browser.text("#response-status")
    error = browser.text(".upstream-error")
    assert "500" in error and "the model server is on fire" in error
    browser.call("click", selector=".step.upstream_call details > summary")  # the request sent, opened
    assert "Say something" in browser.text(".step.upstream_call details")


def test_conversation_shows_items_with_the_turns_that_added_them(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/conversations")
    browser.call("click", selector=f"a[href='/ui/conversations/{scenario.conversation}']")
    items = browser.text("ol.conversation-items")
    assert items.index("Hello, planets.") < items.index("What can you tell me?") < items.index("Ask me about Saturn")
    assert "added through the Conversations API" in items
    assert items.count(f"added by turn {scenario.conversation_turn}") == 2
    browser.call("click", selector=f"ol.conversation-items a[href='/ui/responses/{scenario.conversation_turn}']")
    assert browser.url().endswith(scenario.conversation_turn)
    assert "Guardrail omni checked the input (moderations) — passed" in browser.text(".step.guardrail_check")


def test_vector_store_search_shows_scores_per_ranking_mode(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/files")
    browser.call("click", selector=f"a[href='/ui/vector_stores/{scenario.store_id}']")
    files = browser.text("table[aria-labelledby=vsfiles-h]")
    assert files.count("completed") == 2
    failed = [row for row in files.splitlines() if "failed" in row]
    assert len(failed) == 1, files
    cells = failed[0].split("\t")
    assert cells[2] == "—" and cells[4].startswith("invalid_file: The PDF cannot be read"), cells  # its error
    browser.call("fill", selector="#vs-q", value="rings of ice")
    browser.call("submit", selector="form[role=search] button")
    first_row = browser.text("#search-results tbody tr:first-child")
    assert "saturn.txt" in first_row
    cells = first_row.split("\t")
    assert all("(#1)" in cell for cell in cells[2:5]), first_row  # first in vector, keyword and hybrid


def test_keyboard_navigation_reaches_the_content_with_visible_focus(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    browser.goto(f"{scenario.root}/ui/responses")
    browser.call("press", key="Tab")
    skip = browser.call("focused")
    assert skip["text"] == "Skip to content" and skip["left"] >= 0 and skip["outline"] != "none"
    browser.call("press", key="Enter")
    assert browser.call("focused")["id"] == "main"
    for _ in range(2):
        browser.call("press", key="Tab")
    focused = browser.call("focused")
    assert focused["id"] == "f-model" and focused["outline"] != "none"  # after the search box


def test_a_running_response_updates_live(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    running, finished = _start_slow_turn(scenario, "Live words arrive one by one.", stream=False)
    browser.goto(f"{scenario.root}/ui/responses/{running}")
    assert "in_progress" in browser.text("#response-status")
    browser.call("waitForText", selector="#streaming-now", text="Live words", timeout=30000)
    assert "in_progress" in browser.text("#response-status")  # text shown while the turn still runs
    browser.call("waitForText", selector="#response-status", text="completed", timeout=30000)
    assert "Live words arrive one by one." in browser.text("section[aria-labelledby=output-h]")
    assert finished.wait(30)


def _start_slow_turn(scenario: Scenario, answer: str, stream: bool,
                     background: bool = False) -> tuple[str, threading.Event]:
    """A turn whose answer streams over about 7 s, run in a thread; its id once in progress."""
    scenario.upstream.enqueue(slow_reply(answer, delay_s=0.6, pieces=12))
    finished = threading.Event()

    def run() -> None:
        try:
            created = scenario.client().responses.create(model="fake/planets", input="Go slowly", stream=stream,
                                                         background=background)
            for _ in created if stream else ():  # type: ignore[union-attr]
                pass
        finally:
            finished.set()

    threading.Thread(target=run, daemon=True).start()
    return _wait_for_running(scenario), finished


def _wait_for_running(scenario: Scenario) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = httpx.get(f"{scenario.server.base_url}/responses?limit=1",
                           headers={"Authorization": f"Bearer {scenario.key}"}).json()["data"]
        if listed and listed[0]["status"] == "in_progress":
            return str(listed[0]["id"])
        time.sleep(0.05)
    raise AssertionError("the slow response never showed up in progress")


def test_a_background_response_is_followed_through_its_stored_events(browser: Browser, scenario: Scenario) -> None:
    log_in(browser, scenario.root, scenario.key)
    running, finished = _start_slow_turn(scenario, "Every token shows up as it streams.", stream=True,
                                         background=True)
    deadline = time.monotonic() + 10
    events = None
    while events is None and time.monotonic() < deadline:  # until the first events reach the event log
        browser.goto(f"{scenario.root}/ui/responses/{running}")
        events = browser.call("attribute", selector="#timeline-body", name="data-events")
    assert events == f"/ui/responses/{running}/events"
    browser.call("waitForText", selector="#streaming-text", text="Every token", timeout=30000)
    assert "in_progress" in browser.text("#response-status")
    browser.call("waitForText", selector="#response-status", text="completed", timeout=30000)
    assert "Every token shows up as it streams." in browser.text("section[aria-labelledby=output-h]")
    assert finished.wait(30)
