"""The dashboard in a real browser (Debian's Chromium): sign in, watch a rotation complete
without reloading, approve as an approver (a viewer has no button and the API refuses it),
download the at-risk CSV. Screenshots of the pages go to var/screenshots/ (to docs/screenshots/
with CERTROTATE_REFRESH_SCREENSHOTS=1)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver import Chrome as WebDriver  # Chromium: it has the console log
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.support import LiveStack, screenshot, sign_in, sign_out

pytestmark = pytest.mark.browser


def text_of(driver: WebDriver, css: str) -> str:
    """The element's text, or "" while it is absent or being replaced by a poll."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text.strip() if found else ""
    except StaleElementReferenceException:
        return ""


def click(driver: WebDriver, css: str) -> None:
    """Click what a poll may replace at any moment: retried until it holds still."""

    def clicked(d: WebDriver) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    wait(driver, 20, f"a click on {css}", clicked)


def wait(driver: WebDriver, seconds: float, what: str, until: Callable[[WebDriver], Any]) -> None:
    WebDriverWait(driver, seconds, poll_frequency=0.2).until(until, message=what)


@pytest.fixture(scope="module")
def approval_rotation(live: LiveStack) -> str:
    """Site C's rotation waits for an approver; some laptops are away (clients at risk)."""
    return live.rotate("site-c", require_approval=True)


def test_sign_in_with_a_token(driver: WebDriver, live: LiveStack) -> None:
    token = live.token("ops-desk", "operator")
    driver.get(f"{live.url}/dashboard/rotations")
    assert "/dashboard/login" in driver.current_url
    label = driver.find_element(By.CSS_SELECTOR, "label[for=token]")
    assert label.text == "API token"
    field = driver.find_element(By.ID, "token")
    assert field.get_attribute("type") == "password"
    screenshot(driver, "login")
    # Keyboard only: the field has the focus, Enter signs in.
    assert driver.switch_to.active_element == field
    field.send_keys("crt_not-a-token", Keys.ENTER)
    wait(driver, 10, "an error for a wrong token", lambda d: text_of(d, "#login-error"))
    assert text_of(driver, "#login-error") == "Unknown or revoked API token."
    assert driver.find_element(By.ID, "token").get_attribute("value") == ""
    driver.switch_to.active_element.send_keys(token, Keys.ENTER)
    wait(driver, 10, "the rotations page", lambda d: "/dashboard/rotations" in d.current_url)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Rotations"
    # Tab reaches the skip link first, then the navigation, each with a visible focus ring.
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to content"
    driver.switch_to.active_element.send_keys(Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.text == "Rotations"
    assert focused.value_of_css_property("outline-style") == "solid"
    assert "Signed in as ops-desk (operator)" in driver.find_element(By.CLASS_NAME, "who").text
    cookie = driver.get_cookie("certrotate_dashboard")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # no script can read it


def test_a_rotation_reaches_completed_on_the_page_without_a_reload(
    driver: WebDriver, live: LiveStack, approval_rotation: str
) -> None:
    sign_in(driver, live.url, live.token("watcher", "viewer"))
    # The list was loaded before the rotation exists: it must appear by itself.
    rotation_id = live.rotate("site-a")
    link = f"a[href='/dashboard/rotations/{rotation_id}']"
    wait(
        driver, 20, "the new rotation in the list", lambda d: d.find_elements(By.CSS_SELECTOR, link)
    )
    click(driver, link)
    wait(driver, 10, "the rotation page", lambda d: text_of(d, "#rotation-state"))
    driver.execute_script("window.loadedOnce = true")
    driver.get_log("browser")  # from here on the console must stay clean
    wait(
        driver, 60, "a propagation chart with a reading and a forecast",
        lambda d: "forecast: all reached by" in text_of(d, "figure.chart figcaption"),
    )  # fmt: skip
    screenshot(driver, "rotation-running")
    wait(
        driver,
        90,
        "the rotation to complete",
        lambda d: text_of(d, "#rotation-state") == "completed",
    )
    assert driver.execute_script("return window.loadedOnce === true"), "the page was reloaded"
    # Every asset came from this origin and the CSP refused nothing (no inline style or script).
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    sources = driver.execute_script(
        "return [...document.scripts, ...document.querySelectorAll('link')]"
        ".map(e => e.src || e.href)"
    )
    assert sources and all(s.startswith(f"{live.url}/dashboard/static/") for s in sources)
    assert live.view(rotation_id)["state"] == "completed"

    steps = driver.find_elements(By.CSS_SELECTOR, "ol.timeline > li")
    numbered = [s.text for s in steps if s.text[:2] in {f"{n}." for n in range(1, 8)}]
    assert len(numbered) == 7, numbered
    assert all("done" in s for s in numbered), numbered
    new = live.view(rotation_id)["certificate"]["fingerprint_sha256"].lower()
    after = driver.find_elements(By.CSS_SELECTOR, "td.mono[title]")
    served = {cell.get_attribute("title") for cell in after} - {""}
    assert new in served, "the new certificate's fingerprint is not shown"
    screenshot(driver, "rotation-completed")
    driver.get(f"{live.url}/dashboard/servers")
    wait(driver, 10, "the servers page", lambda d: d.find_elements(By.CSS_SELECTOR, "td.mono"))
    assert "sepm-a1" in driver.page_source and new[:8] in driver.page_source
    screenshot(driver, "servers")
    campaign_id = live.campaign("branches-2026", [["site-b"]])
    driver.get(f"{live.url}/dashboard/campaigns")
    row = f"a[href='/dashboard/campaigns/{campaign_id}']"
    click(driver, row)
    wait(driver, 20, "site-b's rotation", lambda d: "site-b" in text_of(d, "#live-campaign_status"))
    screenshot(driver, "campaign")
    driver.get(f"{live.url}/dashboard/rotations")
    wait(driver, 10, "both rotations", lambda d: "site-b" in text_of(d, "#live-rotations_table"))
    screenshot(driver, "rotations")


def test_an_approver_approves_and_a_viewer_cannot(
    driver: WebDriver, live: LiveStack, approval_rotation: str
) -> None:
    page = f"{live.url}/dashboard/rotations/{approval_rotation}"
    viewer = live.token("auditor", "viewer")
    sign_in(driver, live.url, viewer)
    driver.get(page)
    wait(driver, 10, "the approval panel", lambda d: d.find_elements(By.ID, "approval-title"))
    assert driver.find_elements(By.ID, "approve") == []
    assert "cannot approve" in text_of(driver, "#live-rotation_actions")
    with live.client(viewer) as api:
        refused = api.post(f"/v1/rotations/{approval_rotation}/approve", json={})
    assert refused.status_code == 403 and "approver role" in refused.json()["detail"]
    driver.get(f"{live.url}/dashboard/decisions")
    wait(driver, 10, "the decisions list", lambda d: "approval of the swap" in d.page_source)
    screenshot(driver, "decisions")
    sign_out(driver)

    sign_in(driver, live.url, live.token("cab-chair", "approver"))
    driver.get(page)
    wait(driver, 10, "the approve button", lambda d: d.find_elements(By.ID, "approve"))
    screenshot(driver, "rotation-approval")
    driver.find_element(By.ID, "note").send_keys("CAB approved in the Tuesday meeting")
    driver.find_element(By.ID, "approve").click()
    wait(driver, 15, "the approval to be recorded", lambda d: "Approved." in text_of(d, ".alert"))
    assert driver.find_elements(By.ID, "approval-title") == []
    approval = live.view(approval_rotation)["gates"]["approval"]
    assert approval["approved_by"] == "cab-chair"
    assert approval["note"] == "CAB approved in the Tuesday meeting"


def test_the_at_risk_list_downloads_as_csv(
    driver: WebDriver, live: LiveStack, approval_rotation: str, downloads: Path
) -> None:
    sign_in(driver, live.url, live.token("desk-2", "viewer"))
    driver.get(f"{live.url}/dashboard/rotations/{approval_rotation}")
    rows = "#live-at_risk tbody tr"
    wait(driver, 60, "clients at risk listed", lambda d: d.find_elements(By.CSS_SELECTOR, rows))
    shown = {
        r.find_element(By.TAG_NAME, "td").text for r in driver.find_elements(By.CSS_SELECTOR, rows)
    }
    driver.find_element(By.ID, "at-risk-csv").click()
    deadline = time.monotonic() + 20
    files: list[Path] = []
    while time.monotonic() < deadline and not files:
        files = [f for f in downloads.glob("*.csv") if f.stat().st_size > 0]
        time.sleep(0.2)
    assert files, "no CSV was downloaded"
    with files[0].open(newline="") as handle:
        names = {row["computerName"] for row in csv.DictReader(handle)}
    assert shown <= names, "the page lists clients the CSV does not have"

    # The token is revoked while the page polls: the next poll sends the browser to sign in.
    with live.client() as api:
        [mine] = [t for t in api.get("/v1/tokens").json()["items"] if t["name"] == "desk-2"]
        assert api.delete(f"/v1/tokens/{mine['id']}").status_code == 204
    wait(driver, 20, "the sign-in page", lambda d: "/dashboard/login" in d.current_url)


def test_no_token_reaches_the_services_logs(live: LiveStack) -> None:
    """Every token the suite signed in with or used, against every line logged meanwhile."""
    assert len(live.log.lines) > 10, "too little was logged for this check to mean anything"
    leaked = [line for line in live.log.lines for t in live.tokens if t in line]
    assert not leaked, leaked[:3]
