"""The twin orphans clients exactly the way a real fleet would, and only then."""

from __future__ import annotations

import pytest

from tests.integration.twin.conftest import TwinDriver, presented_fingerprint

pytestmark = pytest.mark.integration

HOUR = 3600


async def test_swapping_the_certificate_with_verification_on_orphans_every_client_that_checks_in(
    driver: TwinDriver,
) -> None:
    before = {c["uniqueId"]: c for c in await driver.all_computers("site-a")}
    online_before = {uid for uid, c in before.items() if c["onlineStatus"] == 1}

    for server in ("sepm-a1", "sepm-a2"):
        await driver.swap_certificate(server)
    assert await driver.orphans() == set()  # nobody has checked in since the swap yet

    await driver.advance(HOUR)  # every online client has had several heartbeats

    orphans = await driver.orphans()
    assert orphans == online_before
    # The other ground-truth views count the same clients; a limit shortens only the list.
    convergence = (await driver.http.get("/twin/v1/ground-truth/convergence?site=site-a")).json()
    assert sum(g["orphaned"] for g in convergence["groups"]) == len(orphans)
    first = (await driver.http.get("/twin/v1/ground-truth/orphans?limit=2")).json()
    assert first["count"] == len(orphans) > 2
    assert len(first["client_ids"]) == 2 and set(first["client_ids"]) <= orphans
    # The orphans went silent: the server shows them offline, and they kept the old policy.
    after = {c["uniqueId"]: c for c in await driver.all_computers("site-a")}
    assert all(after[uid]["onlineStatus"] == 0 for uid in orphans)
    # Site B was not touched, so none of its clients suffered.
    site_b = (await driver.http.get("/twin/v1/ground-truth/orphans?site=site-b")).json()
    assert site_b["count"] == 0

    # A Communication Update Package brings one back; it trusts the management server list's
    # certificates, the new ones since the swap recorded them.
    victim = sorted(orphans)[0]
    cup = await driver.http.post(f"/twin/v1/clients/{victim}/communication-update-package")
    assert cup.status_code == 200 and cup.json()["was_orphaned"] is True
    await driver.advance(HOUR)
    assert await driver.orphans() == orphans - {victim}
    client = (await driver.http.get(f"/twin/v1/clients/{victim}")).json()
    listed = (await driver.http.get("/twin/v1/sites/site-a/management-server-list")).json()
    assert sorted(client["trusted_fingerprints"]) == sorted(
        s["fingerprint_sha256"] for s in listed["servers"]
    )
    assert (
        driver.server(client["server"])["served_fingerprint_sha256"]
        in (client["trusted_fingerprints"])
    )


async def test_the_seven_steps_orphan_only_clients_offline_through_the_first_wait(
    driver: TwinDriver,
) -> None:
    # 1. Break replication, on both sites: each keeps its own partner list.
    assert (await driver.sepm("site-a", "GET", "/replication/is_replicated")).json() is True
    for here, there in (("site-a", "site-b"), ("site-b", "site-a")):
        broken = await driver.host(f"/sites/{here}/replication/partners/{there}/delete")
        assert broken.status_code == 200, broken.text
    assert (await driver.sepm("site-b", "GET", "/replication/is_replicated")).json() is False

    # 2. Disable verification in every group and location.
    off_serials = await driver.set_verification("site-a", False)

    # 3. Wait until every client that is online has the verification-off policy.
    await driver.advance(HOUR)
    computers = await driver.all_computers("site-a")
    offline_during_first_wait = {c["uniqueId"] for c in computers if c["onlineStatus"] == 0}
    stale_online = [
        c
        for c in computers
        if c["onlineStatus"] == 1 and c["profileSerialNo"] != off_serials[c["group"]["id"]]
    ]
    assert stale_online == []
    assert len(offline_during_first_wait) == 15  # 5% of 300, from the scenario
    convergence = (await driver.http.get("/twin/v1/ground-truth/convergence?site=site-a")).json()
    assert convergence["converged"] is True

    # 4. Update the certificate on every server and restart its services.
    for server in ("sepm-a1", "sepm-a2"):
        new_fp = await driver.swap_certificate(server)
        for port in ("8443", "8446", "443"):
            assert await presented_fingerprint(driver.server(server)["ports"][port]) == new_fp

    # 5. Enable verification again, 6. and wait for it.
    on_serials = await driver.set_verification("site-a", True)
    await driver.advance(HOUR)
    computers = await driver.all_computers("site-a")
    assert all(
        c["profileSerialNo"] == on_serials[c["group"]["id"]]
        for c in computers
        if c["onlineStatus"] == 1
    )
    assert await driver.orphans() == set()

    # 7. Restore replication and wait for it to succeed.
    added = await driver.host("/sites/site-a/replication/partners/site-b/add")
    assert added.status_code == 200, added.text
    now = await driver.sepm(
        "site-a",
        "POST",
        "/replication/replicatenow",
        params={"partnerSiteName": "site-b", "content": "false", "logs": "false"},
    )
    assert now.json() == {"code": 0}
    await driver.advance(120)
    status = (await driver.sepm("site-a", "GET", "/replication/status")).json()
    assert status["replicationStatus"]["replicationPartnerStatusList"][0]["status_code"] == (
        "SUCCEEDED"
    )

    # The clients that were away through the first wait come back still verifying the old
    # certificate: they, and only they, are orphaned.
    await driver.advance(11 * 24 * HOUR)
    assert await driver.orphans() == offline_during_first_wait
