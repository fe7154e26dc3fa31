"""Every SEPM REST response of the twin has SEPM.md's field names, nesting and types."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sepm_twin import Twin
from tests.integration.twin.conftest import ADMIN, TwinDriver, two_site_scenario

pytestmark = pytest.mark.contract

HEX32 = re.compile(r"^[0-9A-F]{32}$")
SERIAL = re.compile(r"^[0-9A-F]{4}-\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} \d{3}$")
PAGE = {
    "content": list,
    "firstPage": bool,
    "lastPage": bool,
    "number": int,
    "numberOfElements": int,
    "size": int,
    "sort": (list, type(None)),
    "totalElements": int,
    "totalPages": int,
}
COMPUTER = {
    "uniqueId": str,
    "computerName": str,
    "onlineStatus": int,
    "lastUpdateTime": int,
    "profileSerialNo": str,
    "profileVersion": str,
    "agentVersion": str,
    "group": dict,
    "lastServerName": str,
    "lastSiteName": str,
    "lastConnectedIpAddr": str,
}
GROUP = {
    "id": str,
    "name": str,
    "fullPathName": str,
    "policySerialNumber": str,
    "policyDate": int,
    "numberOfPhysicalComputers": int,
    "policyInheritanceEnabled": bool,
    "defaultLocationId": str,
}
PARTNER = {
    "id": str,
    "name": str,
    "location": str,
    "status_code": str,
    "lastRunTime": (int, type(None)),
    "lastSuccessfulRunTime": (int, type(None)),
    "nextRunTime": (int, type(None)),
}
STATUS_CODES = {
    "SUCCEEDED",
    "CONNECTING",
    "AUTHENTICATING",
    "SUBMITTING",
    "PROCESSING",
    "CANCELED",
    "NEVER_REPLICATED",
    "FAILED_CONNECT",
}


def assert_shape(value: Any, shape: dict[str, Any], where: str) -> None:
    assert isinstance(value, dict), where
    assert set(value) == set(shape), f"{where}: {sorted(set(value) ^ set(shape))}"
    for key, kind in shape.items():
        assert isinstance(value[key], kind), f"{where}.{key} is {type(value[key]).__name__}"
        if kind is int:
            assert not isinstance(value[key], bool), f"{where}.{key} must be a number"


@pytest.fixture
async def sepm() -> AsyncIterator[tuple[httpx.AsyncClient, TwinDriver]]:
    twin = await Twin.start(two_site_scenario())
    async with httpx.AsyncClient(base_url=twin.base_url) as http:
        driver = TwinDriver(twin, http)
        yield http, driver
    await twin.stop()


async def test_authenticate_and_logout(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    http, _ = sepm
    auth = await http.post("/sites/site-a/sepm/api/v1/identity/authenticate", json=ADMIN)
    body = auth.json()
    assert_shape(
        body,
        {"token": str, "tokenExpiration": int, "refreshToken": str, "adminId": str, "role": dict},
        "authenticate",
    )
    assert_shape(body["role"], {"bitMask": int, "title": str}, "authenticate.role")
    logout = await http.post(
        "/sites/site-a/sepm/api/v1/identity/logout",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert logout.status_code == 204 and logout.content == b""


async def test_version(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    http, _ = sepm
    body = (await http.get("/sites/site-a/sepm/api/v1/version")).json()
    assert_shape(body, {"API_SEQUENCE": str, "API_VERSION": str, "version": str}, "version")
    assert body["API_VERSION"] == "14.3.9000"
    assert body["version"] == "14.3.25029.9000"


@pytest.mark.parametrize("path", ["/computers", "/groups/{group}/computers"])
async def test_computer_pages(sepm: tuple[httpx.AsyncClient, TwinDriver], path: str) -> None:
    _, driver = sepm
    group = next(g for g in await driver.groups("site-a") if g["name"] == "Default")
    body = (await driver.sepm("site-a", "GET", path.format(group=group["id"]))).json()
    assert_shape(body, PAGE, "page")
    assert body["sort"][0]["property"] == "COMPUTER_NAME"
    for computer in body["content"]:
        assert_shape(computer, COMPUTER, "computer")
        assert HEX32.match(computer["uniqueId"])
        assert SERIAL.match(computer["profileSerialNo"])
        assert computer["onlineStatus"] in (0, 1)
        assert_shape(
            computer["group"],
            {"id": str, "name": str, "fullPathName": str, "domain": dict},
            "computer.group",
        )
        assert_shape(computer["group"]["domain"], {"id": str, "name": str}, "group.domain")


async def test_groups_locations_and_settings(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    _, driver = sepm
    body = (await driver.sepm("site-a", "GET", "/groups")).json()
    assert_shape(body, PAGE, "groups page")
    assert body["size"] == 25
    for group in body["content"]:
        assert_shape(group, GROUP, "group")
        assert HEX32.match(group["id"]) and HEX32.match(group["defaultLocationId"])
        assert SERIAL.match(group["policySerialNumber"])
        assert group["policySerialNumber"][:4] == group["id"][:4]
        locations = (await driver.sepm("site-a", "GET", f"/groups/{group['id']}/locations")).json()
        assert isinstance(locations, list) and locations
        for location in locations:
            assert_shape(location, {"name": str, "id": str}, "location")
        settings = (
            await driver.sepm(
                "site-a", "GET", f"/groups/{group['id']}/locations/{locations[0]['id']}/settings"
            )
        ).json()
        assert set(settings) == {"configuration"}
        config = settings["configuration"]
        assert isinstance(
            config["general_settings"]["security_settings"]["secure_communications"], bool
        )
        comm = config["communication_settings"]
        assert comm["mode"] in ("PULL", "PUSH")
        assert isinstance(comm["pull_mode_heartbeat_freq_in_seconds"], int)
        patched = await driver.sepm(
            "site-a",
            "PATCH",
            f"/groups/{group['id']}/locations/{locations[0]['id']}/settings",
            json={"configuration": {"communication_settings": {"mode": comm["mode"]}}},
        )
        assert patched.status_code == 200
        assert patched.json() == settings


async def test_online_status(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    _, driver = sepm
    body = (await driver.sepm("site-a", "GET", "/stats/client/onlinestatus")).json()
    assert_shape(body, {"lastUpdated": int, "clientCountStatsList": list}, "onlinestatus")
    for entry in body["clientCountStatsList"]:
        assert_shape(entry, {"status": str, "clientsCount": int}, "clientCountStats")
    assert {e["status"] for e in body["clientCountStatsList"]} == {"ONLINE", "OFFLINE"}


async def test_replication(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    _, driver = sepm
    assert (await driver.sepm("site-a", "GET", "/replication/is_replicated")).json() is True
    body = (await driver.sepm("site-a", "GET", "/replication/status")).json()
    assert set(body) == {"replicationStatus"}
    status = body["replicationStatus"]
    assert_shape(
        status, {"id": str, "siteName": str, "replicationPartnerStatusList": list}, "status"
    )
    for partner in status["replicationPartnerStatusList"]:
        assert_shape(partner, PARTNER, "partner")
        assert partner["status_code"] in STATUS_CODES
    now = await driver.sepm(
        "site-a",
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": "site-b", "content": "false", "logs": "false"},
    )
    assert_shape(now.json(), {"code": int}, "replicatenow")


async def test_errors(sepm: tuple[httpx.AsyncClient, TwinDriver]) -> None:
    http, driver = sepm
    unauthorized = await http.get("/sites/site-a/sepm/api/v1/computers")
    not_found = await driver.sepm("site-a", "GET", f"/groups/{'0' * 32}/locations")
    for response, status in ((unauthorized, 401), (not_found, 404)):
        assert response.status_code == status
        assert_shape(
            response.json(),
            {"errorCode": str, "appErrorCode": (str, type(None)), "errorMessage": str},
            "error",
        )
