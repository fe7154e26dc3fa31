"""The SEPM connector against the twin over real HTTPS: paging, tokens, throttling, faults, TLS."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from certrotate_shared import site_directory
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.sepm.api import SepmAuthError, SepmError
from certrotate_shared.sepm.client import SepmCredentials, connect_site
from certrotate_shared.vault import Vault

pytestmark = pytest.mark.integration


class Sleeps:
    """Real sleeps, remembered, so a test can tell that Retry-After was honoured."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


async def scan(api, **kwargs) -> Counter[str]:
    seen: Counter[str] = Counter()
    async for page in api.iter_computer_pages(**kwargs):
        seen.update(c["uniqueId"] for c in page)
    return seen


async def test_a_full_scan_pages_every_client_exactly_once(twin):
    async with twin.client() as api:
        seen = await scan(api, page_size=250)
        version = await api.version()
    assert len(seen) == twin.site()["clients"] == 3000
    assert set(seen.values()) == {1}
    assert version["API_VERSION"] == "14.3.9000"


async def test_an_incremental_scan_returns_only_clients_updated_since(twin):
    async with twin.client() as api:
        first = [c async for page in api.iter_computer_pages(page_size=1000) for c in page]
        watermark = max(c["lastUpdateTime"] for c in first)
        [laptops] = [g async for g in api.iter_groups() if g["name"] == "Laptops"]
        [location] = await api.group_locations(laptops["id"])
        change = {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": False}}
            }
        }
        await api.patch_location_settings(laptops["id"], location.id, change)
        settings = await api.get_location_settings(laptops["id"], location.id)
        response = await twin.http.post("/twin/v1/clock/advance", json={"seconds": 120})
        assert response.status_code == 200
        later = [
            c
            async for page in api.iter_computer_pages(last_update_ms=watermark + 1, page_size=1000)
            for c in page
        ]
    general = settings["configuration"]["general_settings"]
    assert general["security_settings"]["secure_communications"] is False
    assert 0 < len(later) < len(first)
    assert {c["group"]["id"] for c in later} == {laptops["id"]}
    assert all(c["lastUpdateTime"] > watermark for c in later)


async def test_token_expired_mid_scan_is_renewed_and_no_page_is_lost_or_repeated(twin):
    async with twin.client() as api:
        seen: Counter[str] = Counter()
        pages = 0
        async for page in api.iter_computer_pages(page_size=200):
            seen.update(c["uniqueId"] for c in page)
            pages += 1
            if pages == 3:
                # SEPM forgets every session now (service restart, token expiry).
                await twin.fault(kind="token_expiry", path="/computers", count=1)
        assert api.logins == 2
    assert len(seen) == 3000
    assert set(seen.values()) == {1}
    assert await twin.faults() == []  # the expiry really happened


async def test_short_lived_tokens_are_renewed_during_a_long_scan(twin_factory):
    twin = await twin_factory(token_ttl_s=1)
    seen: Counter[str] = Counter()
    async with twin.client() as api:
        # 60 pages read slowly (as a busy monitor would): the scan outlives several tokens.
        async for page in api.iter_computer_pages(page_size=50):
            seen.update(c["uniqueId"] for c in page)
            await asyncio.sleep(0.05)
        assert api.logins >= 2
    assert len(seen) == 3000
    assert set(seen.values()) == {1}


async def test_a_429_storm_is_waited_out_honouring_retry_after(twin):
    sleeps = Sleeps()
    await twin.fault(kind="throttle", path="/computers", retry_after_s=1, count=3)
    async with twin.client(sleep=sleeps) as api:
        seen = await scan(api, page_size=500)
    assert len(seen) == 3000
    assert set(seen.values()) == {1}
    assert len(sleeps.waits) == 3
    assert all(1.0 <= w <= 1.25 for w in sleeps.waits)


async def test_the_twins_rate_limit_is_respected(twin):
    sleeps = Sleeps()
    response = await twin.http.put(
        "/twin/v1/sites/site-a/rate-limit", json={"calls_per_minute": 120}
    )
    assert response.status_code == 200
    async with twin.client(sleep=sleeps) as api:
        statuses = await asyncio.gather(*(api.is_replicated() for _ in range(130)))
    assert statuses == [True] * 130
    assert sleeps.waits, "the twin never throttled; the test proves nothing"


async def test_5xx_on_reads_is_retried_until_sepm_recovers(twin):
    await twin.fault(kind="http_error", status=503, path="/groups", count=2)
    await twin.fault(kind="http_error", status=500, path="/replication/status", count=3)
    async with twin.client() as api:
        groups = [g["fullPathName"] async for g in api.iter_groups()]
        status = await api.replication_status()
    assert groups == ["My Company", "My Company\\Default", "My Company\\Laptops"]
    partners = status["replicationStatus"]["replicationPartnerStatusList"]
    assert [p["name"] for p in partners] == ["site-b"]
    assert await twin.faults() == []


async def test_a_failed_replicatenow_is_reported_once_not_repeated(twin):
    await twin.fault(kind="http_error", status=500, path="/replicatenow", count=2)
    async with twin.client() as api:
        with pytest.raises(SepmError) as raised:
            await api.replicate_now("site-b")
        [fault] = await twin.faults()
        assert fault["fired"] == 1
        assert raised.value.status == 500
        assert raised.value.retryable is True


async def test_replicatenow_is_accepted_with_content_and_logs_false(twin):
    async with twin.client() as api:
        assert await api.replicate_now("site-b") == 0
        with pytest.raises(SepmError) as raised:
            await api.replicate_now("site-z")
    assert raised.value.status == 400
    assert raised.value.retryable is False
    assert "not a replication partner" in str(raised.value)


async def test_a_refused_account_is_a_clear_non_retryable_error(twin):
    wrong = SepmCredentials(username="admin", password="not-the-password")
    async with twin.client(credentials=wrong) as api:
        with pytest.raises(SepmAuthError) as raised:
            await api.is_replicated()
    assert raised.value.retryable is False
    assert "refused the API account 'admin'" in str(raised.value)
    assert "not-the-password" not in str(raised.value)


async def test_tls_trusts_a_pinned_server_certificate_and_rejects_others(twin):
    async with twin.client(trusted_certificates_pem=[twin.served_pem("site-a")]) as api:
        assert await api.is_replicated() is True
    async with twin.client(trusted_certificates_pem=[twin.served_pem("site-b")]) as api:
        with pytest.raises(SepmError) as raised:
            await api.is_replicated()
    assert "TLS certificate is not trusted" in str(raised.value)
    assert raised.value.retryable is False
    # No trust set: the system store, which does not know the twin's CA.
    async with twin.client(trusted_certificates_pem=[]) as api:
        with pytest.raises(SepmError, match="not trusted"):
            await api.version()


async def test_a_trust_set_with_old_and_new_certificate_survives_the_swap(twin):
    old_pem = twin.served_pem()
    server = twin.site()["servers"][0]
    issued = (
        await twin.http.post(
            "/twin/v1/ca/issue",
            json={"hostnames": server["hostnames"], "format": "pkcs12", "password": "pw"},
        )
    ).json()
    only_old = twin.client(trusted_certificates_pem=[old_pem])
    both = twin.client(trusted_certificates_pem=[old_pem, issued["certificate_pem"]])
    assert await only_old.is_replicated() is True
    await twin.host(f"/servers/{server['name']}/certificate/install", issued["install"])
    for service in server["services"]:
        await twin.host(f"/servers/{server['name']}/services/{service}/restart")
    assert twin.served_pem() == issued["certificate_pem"]
    assert await both.is_replicated() is True
    await only_old.close()
    fresh_only_old = twin.client(trusted_certificates_pem=[old_pem])
    with pytest.raises(SepmError, match="not trusted"):
        await fresh_only_old.is_replicated()
    await fresh_only_old.close()
    await both.close()


async def test_a_stopped_api_service_is_reported_as_unreachable(twin):
    api_url = twin.site()["api_url"]
    await twin.twin.stop()
    async with twin.client(trusted_certificates_pem=[]) as api:
        with pytest.raises(SepmError) as raised:
            await api.version()
    origin = api_url.split("/sepm")[0]
    assert str(raised.value) == f"cannot reach {origin}: connection refused"
    assert raised.value.retryable is True


async def test_connect_site_reads_the_account_from_the_vault(twin, tmp_path, master_key):
    vault = Vault(f"sqlite+aiosqlite:///{tmp_path}/vault.db", _key(master_key))
    await vault.start()
    await vault.put("sepm/site-a", "sepm", {"username": "admin", "password": "admin", "domain": ""})
    site = SiteTarget(
        site="site-a",
        version="14.3.9000",
        api_url=twin.site()["api_url"],
        credential_ref="sepm/site-a",
        trusted_certificates_pem=[twin.ca_pem],
        servers=[ServerTarget(name="sepm-a1", address="127.0.0.1", version="14.3.9000")],
        host_ops=HostOpsTarget(driver="twin", endpoint=twin.twin.base_url),
    )
    await site_directory.publish(vault, site, revision=1)  # as the orchestrator does
    async with await connect_site(site, vault) as api:
        assert await api.is_replicated() is True
    # The account follows the site's name, not a reference the command names.
    steered = site.model_copy(update={"credential_ref": "sepm/nowhere"})
    async with await connect_site(steered, vault) as api:
        assert await api.is_replicated() is True
    await vault.delete("sepm/site-a")
    with pytest.raises(SepmAuthError, match="no SEPM API account"):
        await connect_site(site, vault)
    with pytest.raises(SepmError, match="no target published") as unknown:
        await connect_site(site.model_copy(update={"site": "site-z"}), vault)
    assert unknown.value.retryable is False
    with pytest.raises(SepmError, match="publication 2") as stale:
        await connect_site(site.model_copy(update={"revision": 2}), vault)
    assert stale.value.retryable is True
    await vault.stop()


def _key(master_key: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(master_key.encode())
