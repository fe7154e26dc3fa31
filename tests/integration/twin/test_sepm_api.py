"""SEPM's REST behaviour: tokens, paging, serials, incremental queries, errors."""

from __future__ import annotations

import ssl

import httpx
import pytest

from sepm_twin import Twin
from sepm_twin.access import TokenStore
from tests.integration.twin.conftest import ADMIN, TwinDriver, two_site_scenario

pytestmark = pytest.mark.integration


async def test_the_api_works_over_tls_on_the_8446_port_of_every_server(driver: TwinDriver) -> None:
    site = driver.site("site-a")
    ca = driver.twin.topology()["ca_certificate_pem"]
    context = ssl.create_default_context(cadata=ca)
    for server in site["servers"]:
        base = f"https://127.0.0.1:{server['ports']['8446']}/sepm/api/v1"
        async with httpx.AsyncClient(base_url=base, verify=context) as https:
            token = (await https.post("/identity/authenticate", json=ADMIN)).json()["token"]
            page = await https.get(
                "/computers", params={"pageSize": 5}, headers={"Authorization": f"Bearer {token}"}
            )
            assert page.status_code == 200
            assert page.json()["totalElements"] == 420
    assert site["api_url"].startswith("https://127.0.0.1:")


async def test_tokens_expire_and_logout_revokes() -> None:
    twin = await Twin.start(two_site_scenario(token_ttl_s=60))
    site = twin.world.sites["site-a"]
    assert site.tokens.ttl_s == 60  # from the scenario
    # Tokens run on real time; a hand-driven clock instead, so a slow machine cannot expire
    # the token early and the test need not sleep.
    real = [1000.0]
    site.tokens = TokenStore(ttl_s=60, now=lambda: real[0])
    try:
        async with httpx.AsyncClient(base_url=f"{twin.base_url}/sites/site-a/sepm/api/v1") as http:
            assert (await http.get("/groups")).status_code == 401
            auth = (await http.post("/identity/authenticate", json=ADMIN)).json()
            assert auth["tokenExpiration"] == 60
            headers = {"Authorization": f"Bearer {auth['token']}"}
            real[0] += 59
            assert (await http.get("/groups", headers=headers)).status_code == 200
            real[0] += 1  # expires at exactly its TTL
            assert (await http.get("/groups", headers=headers)).status_code == 401
            auth = (await http.post("/identity/authenticate", json=ADMIN)).json()
            headers = {"Authorization": f"Bearer {auth['token']}"}
            assert (await http.post("/identity/logout", headers=headers)).status_code == 204
            assert (await http.get("/groups", headers=headers)).status_code == 401
            wrong = await http.post("/identity/authenticate", json=ADMIN | {"password": "x"})
            assert wrong.status_code == 401
    finally:
        await twin.stop()


async def test_a_settings_change_changes_the_groups_serial_and_reaches_clients(
    driver: TwinDriver,
) -> None:
    group = next(g for g in await driver.groups("site-a") if g["name"] == "Laptops")
    location_id = (await driver.location_ids("site-a", group["id"]))[0]
    path = f"/groups/{group['id']}/locations/{location_id}/settings"
    settings = (await driver.sepm("site-a", "GET", path)).json()["configuration"]
    assert settings["general_settings"]["security_settings"]["secure_communications"] is True
    assert settings["communication_settings"]["mode"] == "PUSH"

    same = {"configuration": {"communication_settings": {"mode": "PUSH"}}}
    await driver.sepm("site-a", "PATCH", path, json=same)
    unchanged = next(g for g in await driver.groups("site-a") if g["id"] == group["id"])
    assert unchanged["policySerialNumber"] == group["policySerialNumber"]

    await driver.advance(10)
    off = {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": False}}
        }
    }
    await driver.sepm("site-a", "PATCH", path, json=off)
    changed = next(g for g in await driver.groups("site-a") if g["id"] == group["id"])
    assert changed["policySerialNumber"] != group["policySerialNumber"]
    assert changed["policySerialNumber"].startswith(group["id"][:4] + "-")
    assert changed["policyDate"] > group["policyDate"]

    # Push clients fetch it within a minute; the incremental query returns just those.
    await driver.advance(61)
    since = changed["policyDate"]
    recent = await driver.all_computers("site-a", lastUpdate=since)
    laptops = [c for c in recent if c["group"]["id"] == group["id"]]
    assert len(laptops) == 120
    assert all(c["profileSerialNo"] == changed["policySerialNumber"] for c in laptops)
    assert all(c["lastUpdateTime"] >= since for c in recent)
    in_group = (
        await driver.sepm(
            "site-a", "GET", f"/groups/{group['id']}/computers", params={"pageSize": 1}
        )
    ).json()
    assert in_group["totalElements"] == 120


async def test_paging_is_one_based_and_ends_on_the_last_page(driver: TwinDriver) -> None:
    first = (await driver.sepm("site-a", "GET", "/computers", params={"pageSize": 400})).json()
    assert (first["firstPage"], first["lastPage"], first["number"], first["totalPages"]) == (
        True,
        False,
        0,
        2,
    )
    second = (
        await driver.sepm("site-a", "GET", "/computers", params={"pageSize": 400, "pageIndex": 2})
    ).json()
    assert (second["lastPage"], second["numberOfElements"]) == (True, 20)
    default = (await driver.sepm("site-a", "GET", "/computers")).json()
    assert default["size"] == 20
    name = first["content"][3]["computerName"]
    by_name = (
        await driver.sepm("site-a", "GET", "/computers", params={"computerName": name})
    ).json()
    assert [c["computerName"] for c in by_name["content"]] == [name]
    desc = (
        await driver.sepm("site-a", "GET", "/computers", params={"order": "DESC", "pageSize": 1})
    ).json()
    assert desc["content"][0]["computerName"] > name


async def test_computer_names_take_sepms_star_wildcard_and_ignore_case(driver: TwinDriver) -> None:
    names = sorted(c["computerName"] for c in await driver.all_computers("site-a"))
    prefix = names[0][:-2]  # e.g. SITEA-WS00000 covers the first hundred clients
    wanted = [n for n in names if n.startswith(prefix)]
    found = await driver.all_computers("site-a", computerName=f"{prefix.lower()}*")
    assert [c["computerName"] for c in found] == wanted
    middle = await driver.all_computers("site-a", computerName=f"*{names[42][-3:]}")
    assert names[42] in {c["computerName"] for c in middle}
    assert all(c["computerName"].endswith(names[42][-3:]) for c in middle)
    by_id = await driver.sepm(
        "site-a", "GET", "/computers", params={"sort": "COMPUTER_ID", "pageSize": 3}
    )
    assert by_id.json()["sort"][0]["property"] == "COMPUTER_ID"
    assert [c["computerName"] for c in by_id.json()["content"]] == names[:3]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        # The vendor definition: 410 for a group that group detail or locations cannot find.
        ("GET", "/groups/0123456789ABCDEF0123456789ABCDEF/locations", {}, 410),
        ("GET", "/groups/0123456789ABCDEF0123456789ABCDEF", {}, 410),
        ("GET", "/groups/0123456789ABCDEF0123456789ABCDEF/computers", {}, 404),
        ("GET", "/computers", {"params": {"pageIndex": 0}}, 400),
        ("GET", "/computers", {"params": {"pageSize": "lots"}}, 400),
        ("GET", "/computers", {"params": {"sort": "FAVOURITE"}}, 400),
        ("POST", "/replication/replicatenow", {"params": {"partnerSiteName": "site-b"}}, 400),
        (
            "POST",
            "/replication/replicatenow",
            {"params": {"partnerSiteName": "site-b", "content": "true", "logs": "false"}},
            400,
        ),
        (
            "POST",
            "/replication/replicatenow",
            {"params": {"partnerSiteName": "nowhere", "content": "false", "logs": "false"}},
            400,
        ),
    ],
)
async def test_unknown_ids_and_bad_requests(
    driver: TwinDriver, method: str, path: str, kwargs: dict, status: int
) -> None:
    response = await driver.sepm("site-a", method, path, **kwargs)
    assert response.status_code == status
    assert set(response.json()) == {"errorCode", "appErrorCode", "errorMessage"}


async def test_malformed_settings_bodies_are_400(driver: TwinDriver) -> None:
    group = (await driver.groups("site-a"))[0]
    location_id = (await driver.location_ids("site-a", group["id"]))[0]
    path = f"/groups/{group['id']}/locations/{location_id}/settings"
    assert (await driver.sepm("site-a", "PATCH", path, content=b"{not json")).status_code == 400
    bad_type = {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": "off"}}
        }
    }
    assert (await driver.sepm("site-a", "PATCH", path, json=bad_type)).status_code == 400
    unknown_location = path.replace(location_id, "F" * 32)
    assert (await driver.sepm("site-a", "GET", unknown_location)).status_code == 404


async def test_online_status_counts_the_offline_fraction(driver: TwinDriver) -> None:
    stats = (await driver.sepm("site-a", "GET", "/stats/client/onlinestatus")).json()
    counts = {s["status"]: s["clientsCount"] for s in stats["clientCountStatsList"]}
    assert counts == {"ONLINE": 405, "OFFLINE": 15}


async def test_a_serial_can_change_without_our_edit(driver: TwinDriver) -> None:
    group = next(g for g in await driver.groups("site-a") if g["name"] == "Laptops")
    touched = await driver.http.post(f"/twin/v1/sites/site-a/groups/{group['id']}/touch-policy")
    assert touched.status_code == 200
    after = next(g for g in await driver.groups("site-a") if g["id"] == group["id"])
    assert after["policySerialNumber"] == touched.json()["policySerialNumber"]
    assert after["policySerialNumber"] != group["policySerialNumber"]
    await driver.advance(61)
    laptops = await driver.all_computers("site-a", lastUpdate=after["policyDate"])
    assert {c["profileSerialNo"] for c in laptops} == {after["policySerialNumber"]}
