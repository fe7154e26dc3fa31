"""SEPM keeps its certificate three times; a swap that updates only some of them shows.

Per server: the Tomcat keystore (8443; 8446 through semapisrv on 14.x), Apache's server.crt and
server.key (443, 8445), and the certificate SEPM records and hands to clients in the management
server list with their policy. Clients pin that list's certificate, not what a port presents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sepm_twin import Twin
from tests.integration.twin.conftest import TwinDriver, presented_fingerprint

pytestmark = pytest.mark.integration

TOMCAT_PORTS = ("8443", "8446")
APACHE_PORTS = ("443", "8445")
CLIENTS = 60
PARTS = {
    "tomcat": "/certificate/stores/tomcat",
    "apache": "/certificate/stores/apache",
    "record": "/certificate/record",
}


@pytest.fixture
async def one_server() -> AsyncIterator[TwinDriver]:
    twin = await Twin.start(
        {
            "seed": 3,
            "clock": {"speed": 0},
            "sites": [
                {
                    "name": "solo",
                    "servers": [{"name": "sepm-s1"}],
                    "groups": [{"name": "My Company\\Default", "clients": CLIENTS}],
                }
            ],
        }
    )
    async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
        yield TwinDriver(twin, http)
    await twin.stop()


async def served(driver: TwinDriver) -> dict[str, str]:
    ports = driver.server("sepm-s1")["ports"]
    return {p: await presented_fingerprint(ports[p]) for p in (*TOMCAT_PORTS, *APACHE_PORTS)}


async def rotate_with_verification_off(
    driver: TwinDriver, update: tuple[str, ...]
) -> tuple[str, str]:
    """The vendor's procedure, with step 4 updating only `update`; returns (old, new) fps."""
    old = driver.server("sepm-s1")["recorded_fingerprint_sha256"]
    await driver.set_verification("solo", False)
    await driver.advance(301)  # every pull client has the verification-off policy
    issued = await driver.issue(driver.server("sepm-s1")["hostnames"])
    for part in update:
        answer = await driver.host(f"/servers/sepm-s1{PARTS[part]}", issued["install"])
        assert answer.status_code == 200, answer.text
    assert (await driver.host("/servers/sepm-s1/restart")).status_code == 200
    await driver.set_verification("solo", True)
    await driver.advance(301)  # they take the verifying policy and its management server list
    await driver.advance(301)  # and check in verifying
    return old, str(issued["fingerprint_sha256"])


@pytest.mark.parametrize(
    ("update", "tomcat_new", "apache_new", "orphaned"),
    [
        (("tomcat", "apache", "record"), True, True, 0),
        # A port keeps the old certificate: the product's every-port check must see it.
        (("tomcat",), True, False, 0),
        (("apache", "record"), False, True, 0),
        # Files replaced, SEPM's record stale: clients get the old certificate in policy and
        # are orphaned as soon as verification is back.
        (("tomcat", "apache"), True, True, CLIENTS),
        (("apache",), False, True, CLIENTS),
        # The record alone: clients pin a certificate no port presents.
        (("record",), False, False, CLIENTS),
        (("tomcat", "record"), True, False, CLIENTS),
    ],
)
async def test_a_swap_of_only_some_stores_is_visible(
    one_server: TwinDriver,
    update: tuple[str, ...],
    tomcat_new: bool,
    apache_new: bool,
    orphaned: int,
) -> None:
    old, new = await rotate_with_verification_off(one_server, update)
    presented = await served(one_server)
    for port in TOMCAT_PORTS:
        assert presented[port] == (new if tomcat_new else old), port
    for port in APACHE_PORTS:
        assert presented[port] == (new if apache_new else old), port
    server = one_server.server("sepm-s1")
    assert server["recorded_fingerprint_sha256"] == (new if "record" in update else old)
    assert len(await one_server.orphans()) == orphaned


async def test_the_combined_install_updates_all_three_as_the_console_does(
    one_server: TwinDriver,
) -> None:
    old = one_server.server("sepm-s1")["recorded_fingerprint_sha256"]
    issued = await one_server.issue(one_server.server("sepm-s1")["hostnames"])
    assert (
        await one_server.host("/servers/sepm-s1/certificate/install", issued["install"])
    ).status_code == 200
    server = one_server.server("sepm-s1")
    fp = issued["fingerprint_sha256"]
    assert server["stores"] == {"tomcat": fp, "apache": fp}
    assert server["recorded_fingerprint_sha256"] == fp
    # Nothing is served before the services restart.
    assert set((await served(one_server)).values()) == {old}


@pytest.mark.parametrize(
    ("service", "reloaded"),
    [("semsrv", ("8443",)), ("semapisrv", ("8446",)), ("semwebsrv", ("443", "8445"))],
)
async def test_each_service_reloads_its_own_store_on_its_own_ports(
    one_server: TwinDriver, service: str, reloaded: tuple[str, ...]
) -> None:
    before = await served(one_server)
    issued = await one_server.issue(one_server.server("sepm-s1")["hostnames"])
    await one_server.host("/servers/sepm-s1/certificate/install", issued["install"])
    assert (await one_server.host(f"/servers/sepm-s1/services/{service}/restart")).is_success
    after = await served(one_server)
    assert {p for p in after if after[p] != before[p]} == set(reloaded)
    assert set(after[p] for p in reloaded) == {issued["fingerprint_sha256"]}


async def test_backup_and_restore_cover_both_stores_and_the_record(one_server: TwinDriver) -> None:
    before = one_server.server("sepm-s1")
    backup = (await one_server.host("/servers/sepm-s1/certificate/backup")).json()
    assert backup["fingerprints"] == {
        "tomcat": before["stores"]["tomcat"],
        "apache": before["stores"]["apache"],
        "record": before["recorded_fingerprint_sha256"],
    }
    issued = await one_server.issue(before["hostnames"])
    for path in PARTS.values():
        await one_server.host(f"/servers/sepm-s1{path}", issued["install"])
    restored = await one_server.host(
        "/servers/sepm-s1/certificate/restore", {"backup_id": backup["backup_id"]}
    )
    assert restored.status_code == 200, restored.text
    after = one_server.server("sepm-s1")
    assert (after["stores"], after["recorded_fingerprint_sha256"]) == (
        before["stores"],
        before["recorded_fingerprint_sha256"],
    )


async def test_the_management_server_list_carries_the_recorded_certificate(
    one_server: TwinDriver,
) -> None:
    issued = await one_server.issue(one_server.server("sepm-s1")["hostnames"])
    await one_server.host("/servers/sepm-s1/certificate/record", issued["install"])
    listed: dict[str, Any] = (
        await one_server.http.get("/twin/v1/sites/solo/management-server-list")
    ).json()
    assert listed["name"] == "Default Management Server List"
    assert [(s["server"], s["fingerprint_sha256"]) for s in listed["servers"]] == [
        ("sepm-s1", issued["fingerprint_sha256"])
    ]
