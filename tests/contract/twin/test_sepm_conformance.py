"""Every SEPM answer of the twin validates against our schemas of SEPM's own REST definition.

The schemas (sepm_schemas.json) are written from the vendor definition's facts; a field the
twin invents, a missing required field or a wrong type fails here, whatever the product does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator

from sepm_twin import Twin
from tests.integration.twin.conftest import ADMIN, TwinDriver, two_site_scenario

pytestmark = pytest.mark.contract

SCHEMAS = json.loads((Path(__file__).parent / "sepm_schemas.json").read_text(encoding="utf-8"))


def validator(name: str) -> Draft7Validator:
    return Draft7Validator({"definitions": SCHEMAS["definitions"], "$ref": f"#/definitions/{name}"})


def conforms(response: httpx.Response, name: str, status: int = 200) -> Any:
    """The answer's JSON body, after checking its status and its schema."""
    assert response.status_code == status, f"{response.request.url}: {response.text[:300]}"
    body = response.json()
    errors = sorted(validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{response.request.method} {response.request.url.path} is not {name}: " + (
        "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)
    )
    return body


def test_the_schemas_are_valid_json_schemas() -> None:
    Draft7Validator.check_schema(SCHEMAS)
    for name in SCHEMAS["definitions"]:
        validator(name)


@pytest.fixture
async def sepm() -> AsyncIterator[TwinDriver]:
    twin = await Twin.start(two_site_scenario())
    async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
        yield TwinDriver(twin, http)
    await twin.stop()


async def test_identity_and_version(sepm: TwinDriver) -> None:
    http = sepm.http
    base = "/sites/site-a/sepm/api/v1"
    token = conforms(await http.post(f"{base}/identity/authenticate", json=ADMIN), "UserToken")
    assert token["role"]["bitMask"] == 8  # a system administrator, as certrotate requires
    conforms(await http.get(f"{base}/version"), "Version")
    logout = await http.post(
        f"{base}/identity/logout", headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert logout.status_code == 204 and logout.content == b""


async def test_domains_groups_and_group_detail(sepm: TwinDriver) -> None:
    domains = conforms(await sepm.sepm("site-a", "GET", "/domains"), "Domains")
    for domain in domains:
        page = conforms(
            await sepm.sepm("site-a", "GET", "/groups", params={"domain": domain["id"]}),
            "GroupPage",
        )
        assert page["content"], f"domain {domain['name']} has at least its My Company group"
        for group in page["content"]:
            assert group["domain"] == {"id": domain["id"], "name": domain["name"]}
            detail = await sepm.sepm(
                "site-a", "GET", f"/groups/{group['id']}", params={"domainId": domain["id"]}
            )
            assert conforms(detail, "Group") == group


async def test_locations_are_strings_with_names_or_bare_ids(sepm: TwinDriver) -> None:
    for group in await sepm.groups("site-a"):
        path = f"/groups/{group['id']}/locations"
        named = conforms(
            await sepm.sepm("site-a", "GET", path, params={"hasName": "true"}),
            "LocationsWithNames",
        )
        ids = conforms(await sepm.sepm("site-a", "GET", path), "LocationIds")
        assert [item.rsplit("/", 1)[-1] for item in named] == ids
        assert group["defaultLocationId"] in ids
        for location_id in ids:
            conforms(
                await sepm.sepm("site-a", "GET", f"{path}/{location_id}/settings"),
                "LocationSettings",
            )


async def test_location_settings_and_their_patch(sepm: TwinDriver) -> None:
    for group in await sepm.groups("site-a"):
        path = f"/groups/{group['id']}/locations/{group['defaultLocationId']}/settings"
        settings = conforms(await sepm.sepm("site-a", "GET", path), "LocationSettings")
        mode = settings["configuration"]["communication_settings"]["mode"]
        same = {"configuration": {"communication_settings": {"mode": mode}}}
        conforms(await sepm.sepm("site-a", "PATCH", path, json=same), "LocationSettings")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"pageSize": 7, "pageIndex": 2},
        {"computerName": "SITEA-WS00001*"},
        {"sort": "COMPUTER_ID", "order": "DESC"},
        {"sort": "COMPUTER_DOMAIN_NAME"},
        {"sort": "DOMAIN_ID"},
        {"lastUpdate": 1},
    ],
)
async def test_computer_pages(sepm: TwinDriver, params: dict[str, Any]) -> None:
    conforms(await sepm.sepm("site-a", "GET", "/computers", params=params), "ComputerPage")
    group = next(g for g in await sepm.groups("site-a") if g["name"] == "Default")
    conforms(
        await sepm.sepm("site-a", "GET", f"/groups/{group['id']}/computers", params=params),
        "ComputerPage",
    )


async def test_online_status(sepm: TwinDriver) -> None:
    conforms(
        await sepm.sepm("site-a", "GET", "/stats/client/onlinestatus"),
        "ClientsOnlineStatsResponse",
    )


async def test_replication_before_during_and_after_a_run_and_for_a_new_partner(
    sepm: TwinDriver,
) -> None:
    assert conforms(await sepm.sepm("site-a", "GET", "/replication/is_replicated"), "IsReplicated")
    conforms(await sepm.sepm("site-a", "GET", "/replication/status"), "ReplicationStatusResponse")
    now = await sepm.sepm(
        "site-a",
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": "site-b", "content": "false", "logs": "false"},
    )
    assert conforms(now, "ReplicationAllStatus")["code"] == 0
    conforms(await sepm.sepm("site-a", "GET", "/replication/status"), "ReplicationStatusResponse")
    # A partner re-added after both sides deleted it has never replicated: its run times are 0.
    for here, there in (("site-a", "site-b"), ("site-b", "site-a")):
        assert (await sepm.host(f"/sites/{here}/replication/partners/{there}/delete")).is_success
    assert (await sepm.host("/sites/site-a/replication/partners/site-b/add")).is_success
    status = conforms(
        await sepm.sepm("site-a", "GET", "/replication/status"), "ReplicationStatusResponse"
    )
    [partner] = status["replicationStatus"]["replicationPartnerStatusList"]
    assert (partner["name"], partner["lastSuccessfulRunTime"]) == ("site-b", 0)


async def test_errors(sepm: TwinDriver) -> None:
    unauthorized = await sepm.http.get("/sites/site-a/sepm/api/v1/computers")
    conforms(unauthorized, "Error", 401)
    unknown = "0" * 32
    # SEPM's definition answers 410 for an unknown group on group detail and locations.
    conforms(await sepm.sepm("site-a", "GET", f"/groups/{unknown}"), "Error", 410)
    conforms(await sepm.sepm("site-a", "GET", f"/groups/{unknown}/locations"), "Error", 410)
    conforms(await sepm.sepm("site-a", "GET", f"/groups/{unknown}/computers"), "Error", 404)
    conforms(
        await sepm.sepm("site-a", "GET", "/computers", params={"sort": "FAVOURITE"}), "Error", 400
    )


async def test_an_estate_with_domains_and_inheriting_groups_conforms_everywhere() -> None:
    estate = Path(__file__).parents[3] / "simulator" / "scenarios" / "estate.yaml"
    twin = await Twin.start(estate)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
            driver = TwinDriver(twin, http)
            domains = conforms(await driver.sepm("hq", "GET", "/domains"), "Domains")
            assert len(domains) == 2
            inheriting = 0
            for domain in domains:
                scope = {"domain": domain["id"]}
                groups = conforms(
                    await driver.sepm("hq", "GET", "/groups", params={**scope, "pageSize": 50}),
                    "GroupPage",
                )["content"]
                for group in groups:
                    inheriting += group["policyInheritanceEnabled"]
                    path = f"/groups/{group['id']}"
                    by_id = {"domainId": domain["id"]}
                    conforms(await driver.sepm("hq", "GET", path, params=by_id), "Group")
                    named = conforms(
                        await driver.sepm(
                            "hq", "GET", f"{path}/locations", params={**by_id, "hasName": "true"}
                        ),
                        "LocationsWithNames",
                    )
                    for item in named:
                        location = item.rsplit("/", 1)[-1]
                        conforms(
                            await driver.sepm("hq", "GET", f"{path}/locations/{location}/settings"),
                            "LocationSettings",
                        )
                    conforms(
                        await driver.sepm("hq", "GET", f"{path}/computers", params=scope),
                        "ComputerPage",
                    )
                conforms(
                    await driver.sepm("hq", "GET", "/computers", params={**scope, "pageSize": 500}),
                    "ComputerPage",
                )
            assert inheriting == 2
    finally:
        await twin.stop()
