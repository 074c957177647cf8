"""The dashboard in headless Chromium: sign in, list, open an investigation, see progress arrive live."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from redis import Redis
from web_harness import ARTIFACTS, REDIS_URL, Server, make_investigation

from core.models import Status
from core.progress import Progress
from core.store import Store
from web.auth import create_api_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


def _sign_in(page: object, server: Server, key: str) -> None:
    page.goto(f"{server.url}/investigations")  # type: ignore[attr-defined]
    page.wait_for_url("**/login?next=*")  # type: ignore[attr-defined]
    page.fill("#key", key)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url("**/investigations")  # type: ignore[attr-defined]


def test_list_open_and_watch_progress_arrive_live(browser: object, server: Server, web_store: Store) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    key, _ = create_api_key("browser-write", ["write"], store=web_store)
    finished = make_investigation(web_store, title="checkout: p99 latency above 2 s")
    running = make_investigation(
        web_store, service="payments", title="payments: 5xx rate above 5 %", status=Status.gathering, with_report=False
    )
    progress = Progress(web_store, running.id, Redis.from_url(REDIS_URL))
    progress("gathering", "Reading 3 log files and 14 commits", milestone=True)

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, server, key)
    assert page.locator(f"a[href='/investigations/{finished.id}']").is_visible()
    assert page.locator(f"a[href='/investigations/{running.id}'] .badge").inner_text() == "gathering"
    page.screenshot(path=str(ARTIFACTS / "dashboard-list.png"), full_page=True)

    page.click(f"a[href='/investigations/{running.id}']")
    page.wait_for_selector("#progress li")
    page.wait_for_selector("#progress[data-live=open]")
    progress("analysing", "Ranking 2 suspect commits against the onset at 13:42")
    page.wait_for_selector("#progress li:has-text('Ranking 2 suspect commits')", timeout=10_000)
    assert page.locator("#progress li").count() == 2
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

    page.goto(f"{server.url}/investigations/{finished.id}")
    assert page.locator(".irr-category").inner_text() == "Bad deploy"
    assert page.locator(".irr-chart").count() == 2
    assert page.get_by_role("button", name="Re-run").is_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard-detail.png"), full_page=True)
    context.close()


def test_read_key_sees_no_actions_and_the_page_fits_a_phone(browser: object, server: Server, web_store: Store) -> None:
    key, _ = create_api_key("browser-read", ["read"], store=web_store)
    finished = make_investigation(web_store)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, server, key)
    page.goto(f"{server.url}/investigations/{finished.id}")
    assert page.locator("text=read-only").is_visible()
    assert page.get_by_role("button", name="Re-run").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    context.close()
