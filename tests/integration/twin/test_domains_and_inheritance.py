"""Several domains per site, groups that inherit policy, per-client agent versions, and clients
that were already offline when the scenario starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sepm_twin import Twin
from tests.integration.twin.conftest import TwinDriver

pytestmark = pytest.mark.integration

START = "2026-03-01T12:00:00Z"
START_MS = 1772366400000
DAY_MS = 86_400_000
OWNER = "My Company\\Workstations"
FLOOR = "My Company\\Workstations\\Floor 1"
ROOM = "My Company\\Workstations\\Floor 1\\Room 2"


def estate(**overrides: Any) -> dict[str, Any]:
    scenario: dict[str, Any] = {
        "seed": 5,
        "clock": {"speed": 0, "start": START},
        "sites": [
            {
                "name": "hq",
                "servers": [{"name": "sepm-hq1"}],
                "groups": [
                    {"name": OWNER, "clients": 40, "locations": ["Default", "VPN"]},
                    {"name": FLOOR, "clients": 30, "inherits": True},
                    {"name": ROOM, "clients": 10, "inherits": True},
                    {
                        "name": "My Company\\Stale",
                        "clients": 20,
                        "offline": {"fraction": 0.5, "since_days": 30, "days": 100},
                    },
                    {
                        "name": "My Company\\Paris",
                        "domain": "Europe",
                        "clients": 20,
                        "agent_versions": {"14.2.1031.0100": 0.25},
                    },
                ],
            }
        ],
    }
    scenario.update(overrides)
    return scenario


@pytest.fixture
async def hq() -> AsyncIterator[TwinDriver]:
    twin = await Twin.start(estate())
    async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
        yield TwinDriver(twin, http)
    await twin.stop()


async def by_path(driver: TwinDriver, **params: Any) -> dict[str, dict[str, Any]]:
    body = (await driver.sepm("hq", "GET", "/groups", params={"pageSize": 100, **params})).json()
    return {g["fullPathName"]: g for g in body["content"]}


async def test_each_domain_has_its_own_groups_and_clients(hq: TwinDriver) -> None:
    domains = {d["name"]: d for d in (await hq.sepm("hq", "GET", "/domains")).json()}
    assert set(domains) == {"Default", "Europe"}
    default, europe = domains["Default"], domains["Europe"]
    # Without a domain, SEPM answers for the domain the administrator logged on to.
    assert await by_path(hq) == await by_path(hq, domain=default["id"])
    assert "My Company\\Paris" not in await by_path(hq)
    in_europe = await by_path(hq, domain=europe["id"])
    assert set(in_europe) == {"My Company", "My Company\\Paris"}
    assert in_europe["My Company"]["id"] != (await by_path(hq))["My Company"]["id"]
    assert {g["domain"]["id"] for g in in_europe.values()} == {europe["id"]}

    assert len(await hq.all_computers("hq")) == 100
    paris = await hq.all_computers("hq", domain=europe["id"])
    assert len(paris) == 20
    assert {c["group"]["domain"]["name"] for c in paris} == {"Europe"}
    paris_id = in_europe["My Company\\Paris"]["id"]
    detail = await hq.sepm("hq", "GET", f"/groups/{paris_id}", params={"domainId": europe["id"]})
    assert detail.json()["fullPathName"] == "My Company\\Paris"
    wrong = await hq.sepm("hq", "GET", f"/groups/{paris_id}", params={"domainId": default["id"]})
    assert wrong.status_code == 410
    unknown = await hq.sepm("hq", "GET", "/computers", params={"domain": "Atlantis"})
    assert unknown.status_code == 400


async def test_inheriting_groups_report_their_owners_locations_and_serial(hq: TwinDriver) -> None:
    groups = await by_path(hq)
    owner, floor, room = groups[OWNER], groups[FLOOR], groups[ROOM]
    assert (owner["policyInheritanceEnabled"], floor["policyInheritanceEnabled"]) == (False, True)
    assert room["policyInheritanceEnabled"] is True
    owner_locations = (
        await hq.sepm("hq", "GET", f"/groups/{owner['id']}/locations", params={"hasName": "true"})
    ).json()
    assert sorted(name.split(":")[0] for name in owner_locations) == ["Default", "VPN"]
    for child in (floor, room):
        listed = await hq.sepm(
            "hq", "GET", f"/groups/{child['id']}/locations", params={"hasName": "true"}
        )
        assert listed.json() == owner_locations
        assert child["policySerialNumber"] == owner["policySerialNumber"]
        assert child["defaultLocationId"] == owner["defaultLocationId"]
        assert child["numberOfPhysicalComputers"] != owner["numberOfPhysicalComputers"]


async def test_patching_an_inheriting_group_is_refused_and_changes_nothing(hq: TwinDriver) -> None:
    groups = await by_path(hq)
    floor, owner = groups[FLOOR], groups[OWNER]
    path = f"/groups/{floor['id']}/locations/{floor['defaultLocationId']}/settings"
    assert (await hq.sepm("hq", "GET", path)).status_code == 200
    off = {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": False}}
        }
    }
    refused = await hq.sepm("hq", "PATCH", path, json=off)
    assert refused.status_code == 400
    assert OWNER in refused.json()["errorMessage"]
    after = await by_path(hq)
    assert after[OWNER]["policySerialNumber"] == owner["policySerialNumber"]
    assert after[FLOOR]["policySerialNumber"] == floor["policySerialNumber"]


async def test_the_owners_change_reaches_every_inheriting_client(hq: TwinDriver) -> None:
    owner = (await by_path(hq))[OWNER]
    for location_id in await hq.location_ids("hq", owner["id"]):
        off = {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": False}}
            }
        }
        path = f"/groups/{owner['id']}/locations/{location_id}/settings"
        assert (await hq.sepm("hq", "PATCH", path, json=off)).status_code == 200
    groups = await by_path(hq)
    serial = groups[OWNER]["policySerialNumber"]
    assert serial != owner["policySerialNumber"]
    assert groups[FLOOR]["policySerialNumber"] == groups[ROOM]["policySerialNumber"] == serial
    await hq.advance(301)
    for path in (OWNER, FLOOR, ROOM):
        members = (
            await hq.sepm(
                "hq", "GET", f"/groups/{groups[path]['id']}/computers", params={"pageSize": 100}
            )
        ).json()["content"]
        assert members and {c["profileSerialNo"] for c in members} == {serial}, path


async def test_an_inheriting_patch_can_be_rehearsed_as_changing_the_owner() -> None:
    twin = await Twin.start(estate(inherited_settings_patch="owner"))
    try:
        async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
            driver = TwinDriver(twin, http)
            before = await by_path(driver)
            floor = before[FLOOR]
            path = f"/groups/{floor['id']}/locations/{floor['defaultLocationId']}/settings"
            body = {"configuration": {"communication_settings": {"mode": "PUSH"}}}
            assert (await driver.sepm("hq", "PATCH", path, json=body)).status_code == 200
            after = await by_path(driver)
            assert after[OWNER]["policySerialNumber"] != before[OWNER]["policySerialNumber"]
            assert after[ROOM]["policySerialNumber"] == after[OWNER]["policySerialNumber"]
    finally:
        await twin.stop()


async def test_agent_versions_are_per_client(hq: TwinDriver) -> None:
    europe = next(
        d for d in (await hq.sepm("hq", "GET", "/domains")).json() if d["name"] == "Europe"
    )
    paris = await hq.all_computers("hq", domain=europe["id"])
    versions = [c["agentVersion"] for c in paris]
    assert versions.count("14.2.1031.0100") == 5
    assert versions.count("14.3.25029.9000") == 15


async def test_clients_offline_since_before_the_start_look_stale(hq: TwinDriver) -> None:
    stale = (await by_path(hq))["My Company\\Stale"]
    members = (
        await hq.sepm("hq", "GET", f"/groups/{stale['id']}/computers", params={"pageSize": 100})
    ).json()["content"]
    away = [c for c in members if c["onlineStatus"] == 0]
    assert len(away) == 10
    assert {c["lastUpdateTime"] for c in away} == {START_MS - 30 * DAY_MS}
    # They went away before the group's last policy change, so they do not have it.
    assert all(c["profileSerialNo"] != stale["policySerialNumber"] for c in away)
    here = [c for c in members if c["onlineStatus"] == 1]
    assert {c["profileSerialNo"] for c in here} == {stale["policySerialNumber"]}


def test_a_root_group_cannot_inherit_and_an_inheriting_group_sets_no_policy() -> None:
    from sepm_twin.scenario import load_scenario

    def site(*groups: dict[str, Any]) -> dict[str, Any]:
        return estate(sites=[{"name": "x", "servers": [{"name": "s"}], "groups": list(groups)}])

    with pytest.raises(ValueError, match="cannot inherit"):
        load_scenario(site({"name": "My Company", "inherits": True}))
    with pytest.raises(ValueError, match="cannot set mode"):
        load_scenario(site({"name": OWNER}, {"name": FLOOR, "inherits": True, "mode": "push"}))
