"""One real `retain serve` and one headless Debian chromium for every test of the RM page."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def site(site):
    """The session's service (tests/conftest.py ``site``), as the page tests read it."""
    return {
        "url": site.url,
        "tokens": site.tokens,
        "books": site.books[:2],
        "scores": site.scores(),
        "folder": site.folder,
        "scores_dir": site.scores_dir,
        "outcomes": Path(site.outcomes),
    }


# Module scope: while sync Playwright is open its event loop counts as running in this thread,
# and a later test's asyncio.run on the same xdist worker would fail
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(15_000)
    yield context
    context.close()


def log_in(page, site, who: str) -> None:
    page.goto(site["url"] + "/ui/login")
    page.fill("#key", site["tokens"][who])
    page.click("#login")
    page.wait_for_url("**/ui/list**")
