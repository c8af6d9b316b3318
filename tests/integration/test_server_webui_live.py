"""The web UI of ``smtplens serve`` driven by a real headless Chromium (Debian's, through Playwright).

The lab of ``tests/http_lab.py`` runs the SMTP server, its store and the HTTP app (``serve_http``) on 127.0.0.1
at port 0; smtplib delivers real mail and checks what SMTP clients see after clicks in the browser. Chromium
fails the tests in CI and skips them elsewhere when it is missing; Playwright never downloads a browser here: it
is pointed at the system's ``chromium``.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from smtplens.server.scenarios import ScenarioBook
from tests.http_lab import DOMAIN, HttpLab, wait_for
from tests.integration.conftest import need

# Flags for a root CI machine with no network: no sandbox (root), no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = need("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[HttpLab]:
    lab = HttpLab(tmp_path / "store", scenarios=ScenarioBook())
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a script error or a console error (a CSP violation, say) fails the test at the end."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        # an HTTP error answer is logged as "Failed to load resource"; the tests check those answers themselves
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    try:
        yield page
    finally:
        context.close()
    assert problems == []


def test_a_delivered_message_and_its_session_are_shown(lab: HttpLab, page: Page) -> None:
    lab.send("Seen in Chromium", body="This body went through SMTP.\n")
    page.goto(f"{lab.url}/")
    expect(page.locator("#messages")).to_contain_text("Seen in Chromium")
    expect(page.locator("#messages")).to_contain_text("alice@example.test")

    page.get_by_role("link", name="Seen in Chromium").click()
    expect(page.locator("h1")).to_have_text("Seen in Chromium")
    expect(page.locator("#body")).to_contain_text("This body went through SMTP.")
    expect(page.locator("table.headers")).to_contain_text("Subject")

    page.locator("#session-link").click()
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text("220 localhost ESMTP smtplens")
    expect(transcript).to_contain_text("250 2.0.0 Ok: queued as")
    expect(transcript).to_contain_text("221 2.0.0 Bye")


def test_search_finds_one_message_among_several(lab: HttpLab, page: Page) -> None:
    lab.send("Invoice 2024-17")
    lab.send("Team lunch")
    page.goto(f"{lab.url}/messages")
    page.get_by_label("Search messages").fill("invoice")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#messages tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Invoice 2024-17")


def test_the_transcript_names_the_policy_of_a_refusal(lab: HttpLab, page: Page) -> None:
    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("alice@example.test", ["mallory@elsewhere.test"], b"Subject: r\r\n\r\nr\r\n")
    wait_for(lambda: lab.store.stats().sessions_recorded == 1, "the session")
    page.goto(f"{lab.url}/sessions")
    page.locator("#sessions tbody a").first.click()
    refusal = page.locator("#transcript tr", has_text="Relay access denied")
    expect(refusal.locator("td.policy")).to_have_text("relay")


def test_the_maintenance_button_makes_the_next_connection_get_421(lab: HttpLab, page: Page) -> None:
    page.goto(f"{lab.url}/health")
    button = page.locator("#maintenance")
    expect(button).to_have_text("Maintenance: off")
    button.click()
    expect(button).to_have_text("Maintenance: on")
    expect(page.locator("#notice")).to_contain_text("421")
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        lab.smtp()
    assert refused.value.smtp_code == 421

    page.reload()
    expect(page.locator("#status")).to_have_text("maintenance")
    page.locator("#maintenance").click()
    expect(page.locator("#maintenance")).to_have_text("Maintenance: off")
    with lab.smtp() as client:
        assert client.noop()[0] == 250


def test_a_preset_scenario_is_added_switched_and_deleted(lab: HttpLab, page: Page) -> None:
    page.goto(f"{lab.url}/scenarios")
    expect(page.locator("main")).to_contain_text("No scenario yet.")
    page.locator("#preset").select_option("postfix-user-unknown")
    page.locator("#add-preset button").click()
    row = page.locator("#scenarios tr[data-scenario='postfix-user-unknown']")
    expect(row).to_contain_text("User unknown in local recipient table")
    with lab.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("alice@example.test", [f"bob@{DOMAIN}"], b"Subject: u\r\n\r\nu\r\n")
    assert refused.value.recipients[f"bob@{DOMAIN}"][0] == 550

    row.get_by_role("checkbox").uncheck()
    expect(page.locator("#notice")).to_contain_text("Disabled postfix-user-unknown")
    assert lab.client.get("/api/scenarios/postfix-user-unknown").json()["enabled"] is False
    lab.send("accepted again")

    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#scenarios")).to_have_count(0)
    assert lab.client.get("/api/scenarios").json() == {"scenarios": []}


def test_a_scenario_from_json_and_a_refused_spec(lab: HttpLab, page: Page) -> None:
    page.goto(f"{lab.url}/scenarios")
    spec = page.get_by_label("Scenario as JSON")
    spec.fill('{"id": "slow-helo", "name": "Refuse HELO", "stage": "helo", "reply": "550 5.7.1 Go away"}')
    page.locator("#add-json button").click()
    expect(page.locator("#scenarios")).to_contain_text("Refuse HELO")

    page.get_by_label("Scenario as JSON").fill('{"name": "broken", "stage": "nowhere", "reply": "250 ok"}')
    page.locator("#add-json button").click()
    expect(page.locator("#notice")).to_contain_text("stage")
    expect(page.locator("#notice")).to_have_class("notice error")
    assert [s["id"] for s in lab.client.get("/api/scenarios").json()["scenarios"]] == ["slow-helo"]


def test_a_message_is_deleted_from_its_page(lab: HttpLab, page: Page) -> None:
    lab.send("Short-lived")
    page.on("dialog", lambda dialog: dialog.accept())  # the "Delete this message?" confirmation
    page.goto(f"{lab.url}/messages")
    page.get_by_role("link", name="Short-lived").click()
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{lab.url}/messages")
    expect(page.locator("main")).to_contain_text("No message yet.")
    assert lab.store.count() == 0


def test_the_open_connections_view_shows_a_session_in_progress(lab: HttpLab, page: Page) -> None:
    with lab.smtp() as client:
        client.ehlo("still-talking.example.test")
        page.goto(f"{lab.url}/sessions")
        page.locator("#live-link").click()
        page.locator("#sessions tbody a").first.click()
        expect(page.locator("#transcript")).to_contain_text("ehlo still-talking.example.test")
        expect(page.locator("dl.facts")).to_contain_text("still open")
