"""Every fault kind can be injected, at runtime or from the scenario, and an HTTP client sees it."""

from __future__ import annotations

import httpx
import pytest

from sepm_twin import Twin
from sepm_twin.access import RateLimit
from tests.integration.twin.conftest import TwinDriver, two_site_scenario

pytestmark = pytest.mark.integration


async def inject(driver: TwinDriver, **fault: object) -> dict:
    response = await driver.http.post("/twin/v1/faults", json=fault)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_http_error(driver: TwinDriver) -> None:
    await inject(driver, kind="http_error", site="site-a", path="/computers", status=503, count=1)
    failed = await driver.sepm("site-a", "GET", "/computers")
    assert failed.status_code == 503
    assert set(failed.json()) == {"errorCode", "appErrorCode", "errorMessage"}
    assert (await driver.sepm("site-a", "GET", "/computers")).status_code == 200  # count ran out


async def test_timeout(driver: TwinDriver) -> None:
    await inject(driver, kind="timeout", path="/version", delay_s=2, count=1)
    with pytest.raises(httpx.ReadTimeout):
        await driver.http.get("/sites/site-a/sepm/api/v1/version", timeout=0.5)


async def test_throttle(driver: TwinDriver) -> None:
    assert (await driver.sepm("site-a", "GET", "/groups")).status_code == 200
    await inject(driver, kind="throttle", site="site-a", retry_after_s=7)
    throttled = await driver.sepm("site-a", "GET", "/groups")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"


async def test_token_expiry(driver: TwinDriver) -> None:
    assert (await driver.sepm("site-a", "GET", "/groups")).status_code == 200
    await inject(driver, kind="token_expiry", site="site-a", count=1)
    assert (await driver.sepm("site-a", "GET", "/groups")).status_code == 401


async def test_install_failure(driver: TwinDriver) -> None:
    await inject(driver, kind="install_failure", server="sepm-a1", message="Disk full")
    issued = await driver.issue(["sepm-a1.twin.example"])
    failed = await driver.host("/servers/sepm-a1/certificate/install", issued["install"])
    assert failed.status_code == 500
    assert failed.json()["errorMessage"] == "Disk full"
    assert driver.server("sepm-a1")["installed_fingerprint_sha256"] != issued["fingerprint_sha256"]


async def test_service_start_failure(driver: TwinDriver) -> None:
    await inject(driver, kind="service_start_failure", server="sepm-a2", service="semsrv", count=1)
    failed = await driver.host("/servers/sepm-a2/services/semsrv/restart")
    assert failed.status_code == 500
    assert driver.server("sepm-a2")["services"]["semsrv"] == "stopped"
    # A retry with the same key is allowed after a 5xx, and this time the service starts.
    retried = await driver.host("/servers/sepm-a2/services/semsrv/restart")
    assert retried.status_code == 200
    assert driver.server("sepm-a2")["services"]["semsrv"] == "running"


async def test_replication_failure(driver: TwinDriver) -> None:
    await inject(driver, kind="replication_failure", partner="site-b")
    await driver.sepm(
        "site-a",
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": "site-b", "content": "false", "logs": "false"},
    )
    await driver.advance(120)
    status = (await driver.sepm("site-a", "GET", "/replication/status")).json()
    partner = status["replicationStatus"]["replicationPartnerStatusList"][0]
    assert partner["status_code"] == "FAILED_CONNECT"
    assert partner["lastSuccessfulRunTime"] < partner["lastRunTime"]


async def test_faults_on_host_operations_and_their_listing(driver: TwinDriver) -> None:
    fault = await inject(driver, kind="http_error", path="/certificate/backup", status=502)
    assert (await driver.host("/servers/sepm-a1/certificate/backup")).status_code == 502
    listed = (await driver.http.get("/twin/v1/faults")).json()
    assert [(f["id"], f["fired"]) for f in listed] == [(fault["id"], 1)]
    assert (await driver.http.delete(f"/twin/v1/faults/{fault['id']}")).status_code == 204
    assert (await driver.host("/servers/sepm-a1/certificate/backup")).status_code == 200
    bad = await driver.http.post("/twin/v1/faults", json={"kind": "gremlins"})
    assert bad.status_code == 400


async def test_faults_from_the_scenario_file() -> None:
    scenario = two_site_scenario(faults=[{"kind": "http_error", "path": "/groups$", "status": 500}])
    twin = await Twin.start(scenario)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url) as http:
            driver = TwinDriver(twin, http)
            assert (await driver.sepm("site-b", "GET", "/groups")).status_code == 500
    finally:
        await twin.stop()


async def test_the_configured_call_rate_answers_429_with_retry_after() -> None:
    twin = await Twin.start(two_site_scenario(rate_limit={"calls_per_minute": 5}))
    site = twin.world.sites["site-a"]
    assert site.rate_limit.calls_per_minute == 5  # from the scenario
    # The limit runs on real time; a hand-driven clock instead of asserting the calls were fast.
    real = [1000.0]
    site.rate_limit = RateLimit(5, now=lambda: real[0])
    try:
        async with httpx.AsyncClient(base_url=twin.base_url) as http:
            codes = []
            for _ in range(8):
                response = await http.get("/sites/site-a/sepm/api/v1/version")
                codes.append(response.status_code)
            assert codes == [200] * 5 + [429] * 3
            assert int(response.headers["Retry-After"]) == 12  # one call per 12 s
            real[0] += 12  # a client that waits as told gets one more call
            assert (await http.get("/sites/site-a/sepm/api/v1/version")).status_code == 200
            assert (await http.get("/sites/site-a/sepm/api/v1/version")).status_code == 429
            # Each site has its own budget.
            assert (await http.get("/sites/site-b/sepm/api/v1/version")).status_code == 200
            lifted = await http.put(
                "/twin/v1/sites/site-a/rate-limit", json={"calls_per_minute": None}
            )
            assert lifted.status_code == 200
            assert (await http.get("/sites/site-a/sepm/api/v1/version")).status_code == 200
    finally:
        await twin.stop()
