"""One server with its stored turns and one browser per module; a screenshot of every failed
test's page (the path is printed in the failure), and no console error allowed on any page."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.browser import Browser
from tests.ui.scenario import Scenario, running_scenario


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    with running_scenario(tmp_path_factory.mktemp("inspector")) as running:
        yield running


@pytest.fixture(scope="module")
def module_browser() -> Iterator[Browser]:
    with Browser() as browser:
        yield browser


@pytest.fixture
def browser(module_browser: Browser, request: pytest.FixtureRequest) -> Iterator[Browser]:
    module_browser.problems()  # what earlier tests left is theirs
    yield module_browser
    if request.node.stash.get(_CALL_FAILED, False):
        shots = Path(tempfile.mkdtemp(prefix="riposte-ui-failure-"))
        path = module_browser.screenshot(shots / f"{request.node.name}.png")
        print(f"\nscreenshot of the failed page ({module_browser.url()}): {path}")
    problems = module_browser.problems()
    assert not problems, f"console errors: {problems}"


def log_in(browser: Browser, root: str, key: str) -> None:
    browser.goto(f"{root}/ui/login")
    if "/ui/login" not in browser.url():
        return  # already logged in
    browser.call("fill", selector="#api_key", value=key)
    browser.call("submit", selector="button[type=submit]")
