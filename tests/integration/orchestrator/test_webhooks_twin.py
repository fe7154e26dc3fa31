"""End to end on the twin: a PKI system's signed webhook rotates a SEPM site, and the ITSM
tool's receiver hears, verified with the `standardwebhooks` library, that it completed.

Everything real but SEPM: the embedded stack (all four services, SQLite, in-process log) talks
HTTPS to the twin's management servers; the certificate comes from the twin's corporate CA;
the webhook and the callback travel over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from certrotate.stack import ClockSync, EmbeddedStack, start_embedded
from certrotate.twin_inventory import register_twin
from sepm_twin import Twin
from tests.integration.orchestrator.callback_receiver import Receiver
from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.webhook_support import signed
from tests.support.fleets import partner_fleet

pytestmark = pytest.mark.integration

ACCOUNT = {"username": "svc", "password": "pw-webhook-test-1"}
SCENARIO = partner_fleet(ACCOUNT, away_site_clients=None)


@dataclass
class Live:
    twin: Twin
    stack: EmbeddedStack
    api: httpx.AsyncClient

    async def issue(self, site: str) -> dict:
        async with httpx.AsyncClient(base_url=self.twin.base_url, timeout=30) as control:
            topology = (await control.get("/twin/v1/topology")).json()
            servers = next(s for s in topology["sites"] if s["name"] == site)["servers"]
            hostnames = sorted({h for s in servers for h in s["hostnames"]})
            issued = await control.post(
                "/twin/v1/ca/issue",
                json={"hostnames": hostnames, "format": "pkcs12", "password": "pfx-pass-1"},
            )
        return dict(issued.json()["install"])


@pytest.fixture
async def live(tmp_path) -> AsyncIterator[Live]:
    twin = await Twin.start(SCENARIO)
    async with httpx.AsyncClient(base_url=twin.base_url) as control:
        clock = (await control.get("/twin/v1/clock")).json()
    sync = ClockSync(speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"])
    stack = await start_embedded(
        tmp_path / "data", api_port=0, clock=sync,
        callback_allowed_networks=["127.0.0.0/8"], callback_allow_http=True,
        callback_poll_seconds=0.1,
    )  # fmt: skip
    api = httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )  # fmt: skip
    await register_twin(api, twin.topology(), **ACCOUNT)
    try:
        yield Live(twin, stack, api)
    finally:
        await api.aclose()
        await stack.stop()
        await twin.stop()


async def test_a_signed_trigger_rotates_a_twin_site_and_the_itsm_tool_hears_it_completed(live):
    receiver = Receiver()
    await receiver.start()
    try:
        source = await live.api.post("/v1/webhooks/sources", json={"name": "corp-pki"})
        secret = source.json()["secret"]["secret"]
        subscribed = await live.api.post(
            "/v1/subscriptions",
            json={"url": receiver.url, "event_types": ["rotation.completed"],
                  "change_id": "CHG0031337"},
        )  # fmt: skip
        assert subscribed.status_code == 201, subscribed.text
        receiver.secret = subscribed.json()["secret"]

        install = await live.issue("site-a")
        payload = {
            "servers": ["sepm-a1", "sepm-a2"],
            "certificate": {"format": "pkcs12", "data_b64": install["data_b64"],
                            "password": "pfx-pass-1"},
            "change_id": "CHG0031337",
        }  # fmt: skip
        body, headers = signed(secret, payload)
        async with httpx.AsyncClient(base_url=live.stack.api_url, timeout=60) as sender:
            first = await sender.post("/v1/webhooks/corp-pki", content=body, headers=headers)
            assert first.status_code == 201, first.text
            rotation_id = first.json()["rotation_id"]

            async def completed() -> bool:
                view = (await live.api.get(f"/v1/rotations/{rotation_id}")).json()
                assert view["state"] not in ("failed", "compensated"), view
                return view["state"] == "completed"

            await wait_until(completed, timeout=240, interval=0.5)
            # The sender did not see our answer and retries: same webhook-id, same answer.
            _, again_headers = signed(secret, body, msg_id=headers["webhook-id"])
            again = await sender.post("/v1/webhooks/corp-pki", content=body, headers=again_headers)
            assert (again.status_code, again.json()) == (201, first.json())

        view = (await live.api.get(f"/v1/rotations/{rotation_id}")).json()
        new = view["certificate"]["fingerprint_sha256"]
        assert [s["fingerprint_after"] for s in view["servers"]] == [new, new]
        assert view["requested_by"] == "webhook:corp-pki"
        async with httpx.AsyncClient(base_url=live.twin.base_url) as control:
            orphans = (await control.get("/twin/v1/ground-truth/orphans")).json()
        assert orphans["count"] == 0
        listed = (await live.api.get("/v1/rotations", params={"change_id": "CHG0031337"})).json()
        assert [r["id"] for r in listed["items"]] == [rotation_id]

        got = await receiver.wait_for(1, timeout=60)
        assert got[0].payload["type"] == "rotation.completed"
        assert got[0].payload["data"]["rotation_id"] == rotation_id
        assert got[0].payload["data"]["change_id"] == "CHG0031337"
        assert receiver.forged == 0
    finally:
        await receiver.stop()
