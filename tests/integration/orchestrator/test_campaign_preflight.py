"""Campaign creation's pre-flight with the real certificates service (its store and its
checks): one uploaded bundle named for many sites is opened once, each site still gets its
own verdict and its own copy, and a refusal names the first refused site in plan order, across
sites that name the bundle and sites that bring their own certificate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from certificates.adapters.orm import bundles
from certificates.domain import validation
from certrotate_shared.clock import ManualClock
from certrotate_shared.runtime import ServiceRuntime
from tests.integration.orchestrator.real_certificates import with_real_certificates
from tests.integration.orchestrator.webhook_support import Hooks
from tests.support.pki import TestCA, now_utc

pytestmark = pytest.mark.integration

PASSWORD = "Cp5-campaign-bundle-password"
SITES = ["site-c", "site-d", "site-e"]


def names(*sites: str) -> list[str]:
    return [f"{site}-s1.corp" for site in sites]


@dataclass
class Estate:
    hooks: Hooks
    certificates: ServiceRuntime
    ca: TestCA

    async def upload(self, *sites: str) -> str:
        """A PKCS#12 bundle whose names cover `sites`, uploaded on its own: its id."""
        body = self.ca.issue(names(*sites), days=400).upload("pkcs12", PASSWORD)
        response = await self.hooks.api.post("/v1/bundles", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def stored(self) -> list[tuple[str, str]]:
        """(bundle_ref, site) of every bundle the certificates service keeps."""
        async with self.certificates.uow() as uow:
            rows = await uow.session.execute(select(bundles.c.bundle_ref, bundles.c.site))
            return [(r.bundle_ref, r.site) for r in rows]

    async def campaigns(self) -> list[Any]:
        return list((await self.hooks.api.get("/v1/campaigns")).json()["items"])


@pytest.fixture
async def estate(tmp_path: Path, master_key: str) -> AsyncIterator[Estate]:
    clock = ManualClock(now_utc())
    async for hooks, certificates in with_real_certificates(
        tmp_path, master_key, clock=clock, sites=SITES
    ):
        yield Estate(hooks, certificates, TestCA.root().intermediate())


def campaign(sites: list[str], certificate: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "renewal", "plan": {"waves": [sites]}, "certificate": certificate, **extra}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every opening of a bundle by the certificates service (key derivation), by format."""
    seen: list[str] = []
    real = validation.open_bundle

    def spy(upload: Any) -> Any:
        seen.append(upload.format)
        return real(upload)

    monkeypatch.setattr(validation, "open_bundle", spy)
    return seen


async def test_one_bundle_for_many_sites_is_opened_once_and_each_site_gets_its_copy(
    estate: Estate, opened: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="aiosqlite")  # every statement, bulky and harmless
    bundle_id = await estate.upload(*SITES)
    opened.clear()
    created = await estate.hooks.api.post(
        "/v1/campaigns", json=campaign(SITES, {"bundle_id": bundle_id})
    )
    assert created.status_code == 201, created.text
    assert opened == ["pkcs12"]
    copies = [(ref, site) for ref, site in await estate.stored() if ref != bundle_id]
    assert sorted(site for _, site in copies) == SITES
    assert PASSWORD not in caplog.text + created.text


async def test_a_refusal_names_the_first_refused_site_in_plan_order(estate: Estate) -> None:
    bundle_id = await estate.upload("site-c")
    refused = await estate.hooks.api.post(
        "/v1/campaigns", json=campaign(["site-c", "site-e", "site-d"], {"bundle_id": bundle_id})
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "san_missing"
    assert problem["detail"].startswith("site 'site-e': "), problem["detail"]
    assert "site-e-s1.corp" in problem["detail"] and PASSWORD not in refused.text
    assert await estate.campaigns() == []
    # No site of the refused campaign got a copy.
    assert {ref for ref, _ in await estate.stored()} == {bundle_id}


async def test_sites_with_their_own_certificate_and_sites_naming_a_bundle_keep_plan_order(
    estate: Estate,
) -> None:
    bundle_id = await estate.upload("site-c", "site-e")  # not site-d
    own = estate.ca.issue(names("site-c"), days=400).upload("pem")
    # site-d (the bundle's first refused site) comes before site-e (its own certificate, wrong).
    body = campaign(SITES, {"bundle_id": bundle_id}, certificates={"site-e": own})
    refused = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("site 'site-d': "), refused.json()
    # Now the site with its own certificate comes first in the plan: it is the one named.
    body = campaign(["site-e", "site-c", "site-d"], {"bundle_id": bundle_id},
                    certificates={"site-e": own})  # fmt: skip
    refused = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("site 'site-e': "), refused.json()
    # Every site covered: created, the bundle's sites and the own certificate's site each kept.
    fine = estate.ca.issue(names("site-d"), days=400).upload("pem")
    body = campaign(SITES, {"bundle_id": bundle_id}, certificates={"site-d": fine})
    created = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    assert len(await estate.campaigns()) == 1


async def test_an_unknown_bundle_is_named(estate: Estate) -> None:
    refused = await estate.hooks.api.post(
        "/v1/campaigns", json=campaign(SITES, {"bundle_id": "bnd_nothere"})
    )
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_bundle"
    assert "bnd_nothere" in refused.json()["detail"]


async def test_a_refused_campaign_leaves_no_copy_for_any_site(estate: Estate) -> None:
    """Copies made for the sites that passed go when another site is refused: a private key
    kept for a campaign that does not exist would only wait for the store's TTL."""
    bundle_id = await estate.upload("site-c", "site-d")
    wrong = estate.ca.issue(names("site-c"), days=400).upload("pem")
    # site-c and site-d pass in the bundle's batch; site-e's own certificate is refused.
    body = campaign(SITES, {"bundle_id": bundle_id}, certificates={"site-e": wrong})
    refused = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("site 'site-e': "), refused.json()
    assert {ref for ref, _ in await estate.stored()} == {bundle_id}

    # site-e's own certificate passes; a bundle covering site-c only is refused for site-d.
    own = estate.ca.issue(names("site-e"), days=400).upload("pem")
    other = await estate.upload("site-c")
    body = campaign(SITES, {"bundle_id": other}, certificates={"site-e": own})
    refused = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("site 'site-d': "), refused.json()
    assert {ref for ref, _ in await estate.stored()} == {bundle_id, other}

    # Every certificate given passes, but a later site has none.
    body = {"name": "renewal", "plan": {"waves": [SITES]}, "certificates": {"site-c": wrong}}
    refused = await estate.hooks.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "missing_certificate"
    assert {ref for ref, _ in await estate.stored()} == {bundle_id, other}
    assert await estate.campaigns() == []


async def test_a_retry_that_raced_the_first_request_keeps_only_the_campaigns_copies(
    estate: Estate,
) -> None:
    """Two deliveries of one request (same Idempotency-Key) pre-flight side by side; the one
    that loses the insert answers the campaign the other created, and drops its own copies."""
    bundle_id = await estate.upload(*SITES)
    body = campaign(SITES, {"bundle_id": bundle_id})
    headers = {"Idempotency-Key": "renewal-2026"}
    answers = await asyncio.gather(
        *(estate.hooks.api.post("/v1/campaigns", json=body, headers=headers) for _ in range(2))
    )
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert len(await estate.campaigns()) == 1
    copies = {ref for ref, _ in await estate.stored()} - {bundle_id}
    assert len(copies) == len(SITES)  # one campaign's, one a site
