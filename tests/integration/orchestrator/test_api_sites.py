"""A site's stored credentials never follow it to a new address without being given again;
plain-HTTP SEPM URLs and the twin's host agent outside rehearsals are refused."""

from __future__ import annotations

import pytest

from certrotate_shared.vault import Vault
from tests.integration.orchestrator.support import site_body

pytestmark = pytest.mark.integration


def winrm_site(endpoint: str, *, credentials: bool = True) -> dict:
    body = site_body("site-w")
    body["host_ops"] = {"driver": "winrm", "endpoint": endpoint}
    if credentials:
        body["host_ops_credentials"] = {"username": "CORP\\ops", "password": "winrm-pass-1"}
    return body


async def test_a_new_api_url_needs_the_sepm_credentials_again(embedded):
    env = embedded
    moved = site_body("site-a", ["site-b"])
    moved["api_url"] = "https://elsewhere.example:8446/sepm/api/v1"
    del moved["sepm_credentials"]
    refused = await env.api.put("/v1/sites/site-a", json=moved)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "credentials_required"
    assert "sepm_credentials" in refused.json()["detail"]
    assert (await env.api.get("/v1/sites/site-a")).json()["api_url"].startswith("https://site-a")
    # Other changes keep the stored account.
    same_url = site_body("site-a", ["site-b"])
    del same_url["sepm_credentials"]
    same_url["version"] = "14.3.9100"
    assert (await env.api.put("/v1/sites/site-a", json=same_url)).status_code == 200
    moved["sepm_credentials"] = {"username": "svc2", "password": "other-pass-2", "domain": ""}
    assert (await env.api.put("/v1/sites/site-a", json=moved)).status_code == 200


async def test_a_new_host_ops_endpoint_or_driver_needs_its_credentials_again(embedded):
    env = embedded
    created = await env.api.post("/v1/sites", json=winrm_site("https://h1.corp:5986/wsman"))
    assert created.status_code == 201, created.text
    for change in (
        {"driver": "winrm", "endpoint": "https://h2.corp:5986/wsman"},
        {"driver": "manual", "endpoint": None},
    ):
        body = winrm_site("x", credentials=False)
        body["host_ops"] = change
        del body["sepm_credentials"]
        refused = await env.api.put("/v1/sites/site-w", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "credentials_required"
        assert "host_ops_credentials" in refused.json()["detail"]
    store = Vault(env.settings["vault_url"], env.runtime.settings.master_key_bytes())
    await store.start()
    assert (await store.get("hostops/site-w"))["password"] == "winrm-pass-1"
    await store.stop()


async def test_plain_http_and_the_twin_outside_rehearsals_are_refused(embedded):
    env = embedded
    plain = site_body("site-p")
    plain["api_url"] = "http://sepm-p:8446/sepm/api/v1"
    refused = await env.api.post("/v1/sites", json=plain)
    assert refused.status_code == 422 and refused.json()["code"] == "https_required"
    env.runtime.settings.rehearsal = False
    twin = await env.api.post("/v1/sites", json=site_body("site-t"))
    assert twin.status_code == 422 and twin.json()["code"] == "twin_driver_refused"
    assert "REHEARSAL" in twin.json()["detail"]
    assert (await env.api.get("/v1/sites/site-t")).status_code == 404
