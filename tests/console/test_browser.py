"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright):
sign-in (local account and OpenID Connect), the overview's numbers, following a number to its
handoffs and one handoff, switching language, downloading a CSV, a viewer refused an ops
action, hostile lead names shown as text. Takes ``docs/console.png``.

The app and the test identity provider are served over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasuki.console.accounts import Role, add_user
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tests.console.idp import CLIENT_ID, CLIENT_SECRET, IdentityProvider, running_provider, serving
from tests.console.org import IMG_NAME, SCRIPT_NAME, seed
from tests.console.support import OPS_TOKEN, PASSWORD
from tests.services import unavailable
from webhooks import create_app

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).parents[2] / "docs" / "console.png"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[str]:
    """The console over the small org, served on 127.0.0.1; yields its base URL."""
    env = {
        "TASUKI_DATA_DIR": str(tmp_path_factory.mktemp("browser") / "data"),
        "TASUKI_WEBHOOK_SECRET": "browser-webhook-secret",
        "TASUKI_OPS_TOKEN": OPS_TOKEN,
        "TASUKI_OIDC_ISSUER": idp.issuer,
        "TASUKI_OIDC_CLIENT_ID": CLIENT_ID,
        "TASUKI_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "TASUKI_OIDC_NAME": "Example SSO",
        "TASUKI_OIDC_DOMAINS": "example.com",
    }
    settings = load_settings(env)
    store = open_store(settings.database_url)
    seed(store)
    add_user(store, "olivia", Role.OPS, PASSWORD)
    add_user(store, "victor", Role.VIEWER, PASSWORD)
    app = create_app(settings, store=store)
    with serving(app) as url:
        yield url
    store.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable("Chromium", FileNotFoundError(str(CHROMIUM)))
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", accept_downloads=True)
    tab = context.new_page()
    dialogs: list[str] = []

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    tab.on("dialog", dialog)
    yield tab
    assert dialogs == [], "a script ran from CRM text"
    context.close()


def sign_in(page: Any, site: str, username: str, then: str = "/console/?period=2026-10") -> None:
    page.goto(f"{site}{then}")
    assert "/console/login" in page.url
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/console/login" not in url)


def test_not_signed_in_is_redirected_to_login(page: Any, site: str) -> None:
    for path in ("/console/", "/console/people", "/console/handoffs?format=csv&table=handoffs"):
        page.goto(f"{site}{path}")
        assert "/console/login" in page.url
        assert page.locator("#sign-in").is_visible()


def test_sign_in_see_the_numbers_follow_one_to_a_handoff(page: Any, site: str) -> None:
    sign_in(page, site, "olivia")
    assert page.locator('[data-figure="funnel-MK→IS"]').inner_text() == "4"
    assert page.locator('[data-figure="funnel-IS→FS"]').inner_text() == "2"
    assert page.locator('[data-figure="pass-rate-MK→IS"]').inner_text() == "67%"
    page.locator('[data-figure="failed-IS→FS"] a').click()
    page.wait_for_url(re.compile(r".*/console/handoffs\?.*verdict=failed.*"))
    assert page.locator("#count").inner_text().startswith("1 handoffs")
    page.locator("a.handoff-link").first.click()
    page.wait_for_url(re.compile(r".*/console/handoffs/\d+$"))
    assert page.locator("#handoff-title").inner_text() == "Beta expansion"
    assert "is-fs.fs-answer-sla" in page.locator("#findings").inner_text()
    assert "answered late" in page.locator("#clock").inner_text()


def test_screenshot_of_the_overview(page: Any, site: str, tmp_path: Path) -> None:
    """The README's picture, taken by the browser; ``TASUKI_UPDATE_SCREENSHOT=1`` writes it to
    docs/ (otherwise a run leaves the committed one alone)."""
    sign_in(page, site, "olivia")
    page.set_viewport_size({"width": 1280, "height": 900})
    shot = SCREENSHOT if os.environ.get("TASUKI_UPDATE_SCREENSHOT") else tmp_path / "console.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_switch_language(page: Any, site: str) -> None:
    sign_in(page, site, "olivia")
    assert page.locator("header").inner_text().count("Overview") == 1
    page.click("#lang-ja")
    page.wait_for_load_state()
    assert "概要" in page.locator("header").inner_text()
    assert "ファネル" in page.content()
    page.click("#lang-en")
    page.wait_for_load_state()
    assert "Funnel" in page.content()


def test_download_a_csv(page: Any, site: str) -> None:
    sign_in(page, site, "olivia", "/console/boundaries?period=2026-10")
    with page.expect_download() as info:
        page.locator("a.csv").first.click()
    download = info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    by = {r["boundary"]: r for r in rows}
    assert by["MK→IS"]["handoffs"] == "4" and by["IS→FS"]["failed"] == "1"
    assert download.suggested_filename == "tasuki-boundaries-2026-10.csv"


def test_a_viewer_is_refused_an_ops_action(page: Any, site: str) -> None:
    sign_in(page, site, "victor")
    assert page.locator("#compute-kpis").count() == 0
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    answer = page.request.post(
        f"{site}/console/ops/compute-kpis", form={"csrf_token": token}, max_redirects=0
    )
    assert answer.status == 403


def test_hostile_lead_names_are_shown_as_text(page: Any, site: str) -> None:
    sign_in(page, site, "olivia", "/console/handoffs?period=2026-10")
    listing = page.locator("#handoff-list").inner_text()
    assert SCRIPT_NAME in listing and IMG_NAME in listing
    assert page.locator("#handoff-list img").count() == 0
    assert page.locator("main script").count() == 0


def test_sign_in_with_the_identity_provider(page: Any, site: str, idp: IdentityProvider) -> None:
    page.goto(f"{site}/console/people?period=2026-10")
    page.click("#sign-in-oidc")
    page.wait_for_url(re.compile(r".*/console/people\?period=2026-10$"))
    assert "oscar@example.com" in page.locator("#who").inner_text()
    assert "Aiko Mori" in page.content()
