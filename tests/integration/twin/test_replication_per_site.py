"""Replication partnerships are configured per site: deleting the partner on one site leaves it
listed on the other, replication needs both, and re-adding overwrites the partner's database."""

from __future__ import annotations

import pytest

from tests.integration.twin.conftest import TwinDriver

pytestmark = pytest.mark.integration

SERVERS = "My Company\\Servers"


async def partners(driver: TwinDriver, site: str) -> dict[str, str]:
    body = (await driver.sepm(site, "GET", "/replication/status")).json()
    return {
        p["name"]: p["status_code"]
        for p in body["replicationStatus"]["replicationPartnerStatusList"]
    }


async def is_replicated(driver: TwinDriver, site: str) -> bool:
    return bool((await driver.sepm(site, "GET", "/replication/is_replicated")).json())


async def set_heartbeat(driver: TwinDriver, site: str, seconds: int) -> str:
    group = next(g for g in await driver.groups(site) if g["fullPathName"] == SERVERS)
    [location_id] = await driver.location_ids(site, group["id"])
    path = f"/groups/{group['id']}/locations/{location_id}/settings"
    body = {
        "configuration": {
            "communication_settings": {"pull_mode_heartbeat_freq_in_seconds": seconds}
        }
    }
    assert (await driver.sepm(site, "PATCH", path, json=body)).status_code == 200
    return path


async def heartbeat(driver: TwinDriver, site: str, path: str) -> int:
    body = (await driver.sepm(site, "GET", path)).json()
    return int(
        body["configuration"]["communication_settings"]["pull_mode_heartbeat_freq_in_seconds"]
    )


async def replicate_now(driver: TwinDriver, site: str, partner: str) -> int:
    response = await driver.sepm(
        site,
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": partner, "content": "false", "logs": "false"},
    )
    return response.status_code


async def test_deleting_on_one_site_leaves_the_other_listing_it_and_nothing_replicates(
    driver: TwinDriver,
) -> None:
    deleted = await driver.host("/sites/site-a/replication/partners/site-b/delete")
    assert deleted.status_code == 200, deleted.text
    assert await partners(driver, "site-a") == {}
    assert not await is_replicated(driver, "site-a")
    assert "site-a" in await partners(driver, "site-b")
    assert await is_replicated(driver, "site-b")
    # Site A no longer replicates with B: A cannot ask, B's attempts fail.
    assert await replicate_now(driver, "site-a", "site-b") == 400
    path = await set_heartbeat(driver, "site-a", 777)
    assert await replicate_now(driver, "site-b", "site-a") == 200
    await driver.advance(7200)  # B's request and its scheduled runs have come and gone
    assert await partners(driver, "site-b") == {"site-a": "FAILED_CONNECT"}
    assert await heartbeat(driver, "site-b", path) != 777
    # Deleting it again on the same side finds nothing there.
    again = await driver.host("/sites/site-a/replication/partners/site-b/delete")
    assert again.status_code == 404


async def test_re_adding_after_both_sides_deleted_overwrites_the_partner_and_lists_both(
    driver: TwinDriver,
) -> None:
    for here, there in (("site-a", "site-b"), ("site-b", "site-a")):
        assert (await driver.host(f"/sites/{here}/replication/partners/{there}/delete")).is_success
    assert await partners(driver, "site-a") == await partners(driver, "site-b") == {}
    # While apart, each side changes the same group; B's change is the newer one.
    path = await set_heartbeat(driver, "site-a", 111)
    await driver.advance(10)
    await set_heartbeat(driver, "site-b", 222)

    readded = await driver.host("/sites/site-a/replication/partners/site-b/add")
    assert readded.status_code == 200, readded.text
    await driver.advance(600)
    # A's database replaced B's: B's newer edit is gone, and B lists A again.
    assert await heartbeat(driver, "site-b", path) == 111
    assert await partners(driver, "site-a") == {"site-b": "SUCCEEDED"}
    assert await partners(driver, "site-b") == {"site-a": "SUCCEEDED"}
    on_b = await driver.host("/sites/site-b/replication/partners/site-a/add")
    assert on_b.status_code == 409
    assert (await driver.host("/sites/site-a/replication/partners/site-b/add")).status_code == 409


async def test_re_adding_on_one_side_while_the_other_still_lists_it_overwrites_too(
    driver: TwinDriver,
) -> None:
    assert (await driver.host("/sites/site-b/replication/partners/site-a/delete")).is_success
    path = await set_heartbeat(driver, "site-a", 333)
    assert (await driver.host("/sites/site-b/replication/partners/site-a/add")).is_success
    await driver.advance(600)
    # B re-added A: A's database, with its edit, is overwritten with B's.
    assert await heartbeat(driver, "site-a", path) != 333
    assert await partners(driver, "site-a") == {"site-b": "SUCCEEDED"}
