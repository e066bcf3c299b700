"""Browser tests: Debian's Chromium driven by Playwright, against a real
`threadline serve` on real PostgreSQL. `.ci/run` installs Chromium when missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.server import ROOT, ServerProcess

SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope, and browser tests run last (tests/conftest.py): Playwright's sync
# API keeps an event loop running in this thread while it is open, and the
# async tests need that thread's loop to themselves.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does this)")
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def web(server_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server for one test module; tests use their own accounts and sessions."""
    proc = ServerProcess(
        server_database,
        tmp_path_factory.mktemp("web") / "server.log",
        THREADLINE_OFFLINE_TOKEN_DELAY_MS="15",
    )
    proc.start()
    yield proc
    proc.stop()


class Tabs:
    """Browser contexts (a context is one browser profile: its own cookies)."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser, self.base_url = browser, base_url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def new(self, context: BrowserContext | None = None, **options: object) -> Page:
        if context is None:
            options = {"base_url": self.base_url, **options}
            context = self.browser.new_context(**options)  # type: ignore[arg-type]
            self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(15_000)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def tabs(browser: Browser, web: ServerProcess) -> Iterator[Tabs]:
    opened = Tabs(browser, web.url)
    yield opened
    opened.close()
    assert opened.errors == [], f"JavaScript errors: {opened.errors}"


def screenshot(page: Page, name: str) -> None:
    """Save a screen of the app for the README (docs/screenshots/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def shot_path(name: str) -> Path:
    return SCREENSHOTS / f"{name}.png"
