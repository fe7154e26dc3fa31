"""What the browser tests run against: the twin and the four services in embedded mode, on the
twin's accelerated clock, in a thread of their own (Selenium blocks; the servers must not),
and Debian's Chromium driven by Debian's chromedriver (no browser download)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver import Chrome as WebDriver  # Chromium: it has the console log
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from certrotate.stack import ClockSync, EmbeddedStack, start_embedded
from certrotate.twin_inventory import register_twin

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SEPM_USER = "certrotate-svc"
REPO = Path(__file__).resolve().parents[2]
# A test run writes its screenshots under var/ (not tracked), so running the suite never leaves
# the checkout dirty; CERTROTATE_REFRESH_SCREENSHOTS=1 writes them over the documented ones.
SCREENSHOTS = REPO / (
    "docs/screenshots"
    if os.environ.get("CERTROTATE_REFRESH_SCREENSHOTS") == "1"
    else "var/screenshots"
)


def scenario(password: str) -> dict[str, Any]:
    """Site A (two servers) replicating with site B, and a standalone site C whose laptops are
    partly away for days (they stay at risk, so the approval waits with a list to show)."""
    return {
        "seed": 11,
        "clock": {"speed": 3600},
        "admin": {"username": SEPM_USER, "password": password},
        "replication": {"interval_s": 3600, "duration_s": 60},
        "sites": [
            {
                "name": "site-a",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
                "replication_partners": ["site-b"],
                "groups": [
                    # Four hours between check-ins: about four seconds per wait at 3600x.
                    {"name": "My Company\\Workstations", "clients": 120, "mode": "pull",
                     "heartbeat_s": 14400},
                    {"name": "My Company\\Servers", "clients": 20, "mode": "push"},
                ],
            },
            {
                "name": "site-b",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-b1"}],
                "replication_partners": ["site-a"],
                "groups": [{"name": "My Company\\Branch", "clients": 30, "mode": "push"}],
            },
            {
                "name": "site-c",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-c1"}],
                "groups": [
                    {"name": "My Company\\Field laptops", "clients": 40, "mode": "pull",
                     "heartbeat_s": 900, "offline": {"fraction": 0.15, "days": 20}},
                ],
            },
        ],
    }  # fmt: skip


class RawLog(logging.Handler):
    """Every log line the services write, before redaction: a token must not get even there."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args}"
        self.lines.append(f"{record.name} {message} {record.exc_text or ''}")


class LiveStack:
    """The twin and certrotate embedded, served on real ports from a background event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.password = secrets.token_urlsafe(12)
        self.log = RawLog()
        self.tokens: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.twin: Any = None
        self.stack: EmbeddedStack | None = None

    def start(self) -> None:
        self.thread.start()
        self.call(self._start)

    def call(self, make: Callable[[], Any], timeout: float = 120.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(make(), self.loop)
        return future.result(timeout)

    async def _start(self) -> None:
        from sepm_twin import Twin

        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.twin = await Twin.start(scenario(self.password))
        async with httpx.AsyncClient(base_url=self.twin.base_url) as twin_api:
            clock = (await twin_api.get("/twin/v1/clock")).json()
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        self.stack = await start_embedded(
            self.data_dir,
            api_port=0,
            clock=sync,
            log_level="INFO",
            timer_poll_seconds=0.2,
            # Progress every half second (real): a wait of a few seconds draws a curve.
            service_settings={
                "client-monitor": {
                    "min_scan_interval_real_s": 0.2,
                    "progress_min_interval_real_s": 0.5,
                    "progress_min_change_percent": 0.5,
                    "work_poll_s": 0.2,
                }
            },
        )
        # Everything from INFO up, as a service run by `certrotate up` logs it.
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(self.log)
        self.tokens.append(self.stack.admin_token)
        async with self.api() as api:
            await register_twin(
                api, self.twin.topology(), username=SEPM_USER, password=self.password
            )

    def stop(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self.log)
        root.setLevel(getattr(self, "_level", root.level))

        async def stop() -> None:
            if self.stack is not None:
                await self.stack.stop()
            if self.twin is not None:
                await self.twin.stop()

        try:
            self.call(stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    @property
    def url(self) -> str:
        assert self.stack is not None
        return self.stack.api_url

    @property
    def admin_token(self) -> str:
        assert self.stack is not None
        return self.stack.admin_token

    def api(self, token: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=30,
        )

    def client(self, token: str | None = None) -> httpx.Client:
        """A blocking client of the REST API, for the test's own thread."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=30,
        )

    def token(self, name: str, role: str) -> str:
        with self.client() as api:
            made = api.post("/v1/tokens", json={"name": name, "role": role})
            made.raise_for_status()
            self.tokens.append(str(made.json()["token"]))
            return self.tokens[-1]

    def rotate(self, site: str, **options: Any) -> str:
        """Issue a certificate from the twin's CA for the site's servers, start a rotation."""
        body = {
            "site": site,
            "change_id": f"CHG-{secrets.token_hex(3).upper()}",
            "certificate": self.certificate(site),
            "options": options,
        }
        with self.client() as api:
            created = api.post("/v1/rotations", json=body)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

    def campaign(self, name: str, waves: list[list[str]]) -> str:
        sites = [site for wave in waves for site in wave]
        body = {
            "name": name,
            "plan": {"waves": waves},
            "certificates": {site: self.certificate(site) for site in sites},
            "change_id": "CHG-CAMPAIGN-1",
        }
        with self.client() as api:
            created = api.post("/v1/campaigns", json=body)
            assert created.status_code == 201, created.text
            return str(created.json()["id"])

    def certificate(self, site: str) -> dict[str, Any]:
        """A new certificate from the twin's CA for every hostname of the site's servers."""
        topology = self.twin.topology()
        [entry] = [s for s in topology["sites"] if s["name"] == site]
        hosts = sorted({h for server in entry["servers"] for h in server["hostnames"]})
        with httpx.Client(base_url=self.twin.base_url, timeout=30) as twin_api:
            issued = twin_api.post(
                "/twin/v1/ca/issue",
                json={"hostnames": hosts, "format": "pkcs12", "password": "Keystore-Pass-1"},
            )
            issued.raise_for_status()
        install = issued.json()["install"]
        return {
            "format": "pkcs12",
            "data_b64": install["data_b64"],
            "password": install["password"],
        }

    def view(self, rotation_id: str) -> dict[str, Any]:
        with self.client() as api:
            answer = api.get(f"/v1/rotations/{rotation_id}")
            answer.raise_for_status()
            return dict(answer.json())


def chromium(download_dir: Path) -> WebDriver:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError(
            "the browser tests need Debian's chromium and chromium-driver: run scripts/test.sh "
            "(it installs them) or apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,1000", "--force-device-scale-factor=1", "--lang=en-US",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors (CSP)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(download_dir), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)}
    )
    return driver


def sign_in(driver: WebDriver, base: str, token: str) -> None:
    driver.get(f"{base}/dashboard/")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/rotations" in d.current_url)


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    WebDriverWait(driver, 15).until(lambda d: "/dashboard/login" in d.current_url)


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, as a person would scroll through it, into SCREENSHOTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1280, min(max(height, 700), 4000))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path
