"""The orchestrator's client for the batch pre-flight: a campaign larger than one request's
limit goes in parts, in plan order; a refused part names its first refused site and the copies
the earlier parts made are discarded (the campaign will not be created)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from orchestrator.adapters.clients import (
    USES_PER_REQUEST,
    BundleRejectedError,
    CertificatesClient,
)

pytestmark = pytest.mark.unit


class CertificatesService:
    """The certificates service's batch route as the orchestrator sees it over HTTP."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.parts: list[list[str]] = []
        self.discarded: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            self.discarded.append(request.url.path.rsplit("/", 1)[-1])
            return httpx.Response(204)
        sites = [u["site"] for u in json.loads(request.content)["uses"]]
        self.parts.append(sites)
        refused = [s for s in sites if s in self.refuse]
        if refused:
            problem: dict[str, Any] = {
                "code": "san_missing", "site": refused[0],
                "detail": f"site {refused[0]!r}: not covered",
                "refusals": [{"site": s, "code": "san_missing", "detail": "not covered"}
                             for s in refused],
            }  # fmt: skip
            return httpx.Response(422, json=problem)
        uses = [
            {"site": s, "bundle_ref": f"copy-{s}", "fingerprint_sha256": "ab" * 32,
             "subject": "CN=x", "not_after": "2027-01-01T00:00:00+00:00", "sans": [],
             "certificate_pem": ""}
            for s in sites
        ]  # fmt: skip
        return httpx.Response(201, json={"uses": uses})


def client(service: CertificatesService) -> CertificatesClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(service), base_url="http://c")
    return CertificatesClient(http, "token")


def uses(n: int) -> list[dict[str, Any]]:
    return [{"site": f"site-{i:04d}", "hostnames": [], "min_validity_days": 30} for i in range(n)]


async def test_a_large_campaign_goes_in_parts_in_plan_order() -> None:
    service = CertificatesService()
    n = 2 * USES_PER_REQUEST + 7
    copies = await client(service).use_bundle_for_sites("bnd_1", uses(n))
    assert [len(p) for p in service.parts] == [USES_PER_REQUEST, USES_PER_REQUEST, 7]
    assert [c.bundle_ref for c in copies] == [f"copy-{u['site']}" for u in uses(n)]


async def test_a_refused_part_names_its_site_and_the_earlier_copies_are_discarded() -> None:
    late = f"site-{USES_PER_REQUEST + 3:04d}"
    service = CertificatesService(refuse=frozenset({late, f"site-{USES_PER_REQUEST + 9:04d}"}))
    with pytest.raises(BundleRejectedError) as refused:
        await client(service).use_bundle_for_sites("bnd_1", uses(2 * USES_PER_REQUEST))
    assert (refused.value.site, refused.value.code) == (late, "san_missing")
    assert refused.value.detail == "not covered"  # the caller prefixes the site itself
    assert len(service.parts) == 2  # the part after the refused one is not asked
    assert sorted(service.discarded) == [f"copy-{u['site']}" for u in uses(USES_PER_REQUEST)]
