"""Registration refuses what would only fail later: unparseable trust PEMs, duplicate token
names."""

from __future__ import annotations

import pytest

from tests.integration.orchestrator.support import site_body

pytestmark = pytest.mark.integration

NOT_A_CERT = "-----BEGIN CERTIFICATE-----\nMIIBnotreally\n-----END CERTIFICATE-----\n"


async def test_a_trust_pem_that_does_not_parse_is_refused_at_registration(embedded):
    env = embedded
    body = site_body("site-q")
    body["trusted_certificates_pem"] = [NOT_A_CERT]
    refused = await env.api.post("/v1/sites", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_trust_pem"
    assert "trusted_certificates_pem[0]" in refused.json()["detail"]
    assert (await env.api.get("/v1/sites/site-q")).status_code == 404


async def test_token_names_are_unique(embedded):
    env = embedded
    first = await env.api.post("/v1/tokens", json={"name": "itsm", "role": "operator"})
    assert first.status_code == 201
    again = await env.api.post("/v1/tokens", json={"name": "itsm", "role": "viewer"})
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "token_name_taken"
    names = [t["name"] for t in (await env.api.get("/v1/tokens")).json()["items"]]
    assert names.count("itsm") == 1
