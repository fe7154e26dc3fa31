"""A site registered with its pinned server certificate (README, "Pointing certrotate at a real
SEPM") rotates twice in a row: after a completed rotation its trust set holds the new one.

The twin and the whole embedded stack (real certificates, replication and client-monitor
services) run in this event loop."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from certrotate.stack import ClockSync, start_embedded
from certrotate.twin_inventory import server_body, site_body
from sepm_twin import Twin

pytestmark = pytest.mark.integration

ADMIN = {"username": "svc", "password": "pw-pinned-test-123"}
SCENARIO = {
    "clock": {"speed": 3600},
    "admin": ADMIN,
    "sites": [
        {
            "name": "hq", "version": "14.3.9000", "servers": [{"name": "sepm-hq-1"}],
            "groups": [{"name": "My Company\\Default", "clients": 20, "mode": "push"}],
        }
    ],
}  # fmt: skip


async def served_leaf_pem(port: int) -> str:
    # In a thread: the twin's TLS listener runs in this event loop.
    return await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port))


async def issue(twin_url: str, hostnames: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=twin_url, timeout=30) as twin:
        issued = await twin.post(
            "/twin/v1/ca/issue",
            json={"hostnames": hostnames, "format": "pkcs12", "password": "bundle-pass"},
        )
    install = issued.json()["install"]
    return {"format": "pkcs12", "data_b64": install["data_b64"], "password": "bundle-pass"}


async def rotate_to_completion(api: httpx.AsyncClient, certificate: dict[str, Any]) -> dict:
    created = await api.post("/v1/rotations", json={"site": "hq", "certificate": certificate})
    assert created.status_code == 201, created.text
    rotation_id = created.json()["id"]
    for _ in range(300):
        view = (await api.get(f"/v1/rotations/{rotation_id}")).json()
        if view["state"] not in ("running", "compensating"):
            return dict(view)
        await asyncio.sleep(0.1)
    raise AssertionError(f"rotation {rotation_id} did not end: {view['current_step']}")


async def test_a_site_pinned_to_its_leaf_rotates_twice(tmp_path: Path) -> None:
    twin = await Twin.start(SCENARIO)
    try:
        topology = twin.topology()
        clock = await _clock(twin.base_url)
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        stack = await start_embedded(tmp_path / "data", api_port=0, clock=sync)
        try:
            headers = {"Authorization": f"Bearer {stack.admin_token}"}
            async with httpx.AsyncClient(
                base_url=stack.api_url, headers=headers, timeout=30
            ) as api:
                site = topology["sites"][0]
                server = site["servers"][0]
                # Pinned: the leaf the server serves today, not the CA that issued it.
                body = site_body(site, topology, **ADMIN)
                body["trusted_certificates_pem"] = [await served_leaf_pem(server["ports"]["8446"])]
                assert (await api.post("/v1/sites", json=body)).status_code == 201
                registered = await api.post(
                    "/v1/servers", json=server_body({**server, "version": site["version"]})
                )
                assert registered.status_code == 201, registered.text

                for round_ in (1, 2):
                    certificate = await issue(twin.base_url, server["hostnames"])
                    view = await rotate_to_completion(api, certificate)
                    assert view["state"] == "completed", (round_, view.get("reason"))
                    served = _fingerprint(await served_leaf_pem(server["ports"]["8446"]))
                    assert served == view["certificate"]["fingerprint_sha256"]
                    trust = (await api.get("/v1/sites/hq")).json()
                    # The certificate served before and the new one; older ones are dropped.
                    assert trust["trusted_certificates_count"] == 2
        finally:
            await stack.stop()
    finally:
        await twin.stop()


async def _clock(twin_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=twin_url) as control:
        return dict((await control.get("/twin/v1/clock")).json())


def _fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
