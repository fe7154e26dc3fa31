"""One stack and one Chromium for the whole browser suite: starting them is most of its cost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome as WebDriver  # Chromium: it has the console log

from tests.browser.support import LiveStack, chromium


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    stack = LiveStack(tmp_path_factory.mktemp("browser") / "data")
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def driver(downloads: Path) -> Iterator[WebDriver]:
    browser = chromium(downloads)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(autouse=True)
def signed_out(driver: WebDriver, live: LiveStack) -> None:
    """Each test starts signed out (the cookie is the session)."""
    driver.get(f"{live.url}/dashboard/login")
    driver.delete_all_cookies()
