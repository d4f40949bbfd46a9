"""One real `retain serve` and one headless Debian chromium for every test of the RM page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.serving.service_process import add_key, start_service

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def site(scored, tmp_path_factory):
    """The service (2 workers, so a session must hold across processes), its keys and books."""
    folder = tmp_path_factory.mktemp("ui")
    keys = folder / "keys.json"
    scores = pd.read_parquet(scored.out / "scores.parquet")
    books = scores["rm_id"].dropna().astype(str).value_counts().index[:2].tolist()
    tokens = {
        "crm": add_key(keys, scored.env, "--role", "crm", "--name", "crm-system"),
        "admin": add_key(keys, scored.env, "--role", "admin", "--name", "ops"),
        **{
            rm: add_key(keys, scored.env, "--role", "rm", "--rm-id", rm, "--name", f"rm-{rm}")
            for rm in books
        },
    }
    env = {**scored.env, "RETAIN_OUTCOMES": str(folder / "outcomes.db")}
    service = start_service(env, folder, scored.out, keys)
    try:
        service.wait_ready()
        yield {
            "url": service.url,
            "tokens": tokens,
            "books": books,
            "scores": scores,
            "folder": folder,
            "outcomes": folder / "outcomes.db",
        }
    finally:
        service.stop()


@pytest.fixture(scope="session")
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
