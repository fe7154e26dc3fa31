"""Two client-monitor replicas on one PostgreSQL behind any balancer (issue 13): whichever is
asked answers, about a watch the other one scans, and the survivor answers once one stops."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from certrotate_shared.runtime import ServiceRuntime
from client_monitor.bootstrap import advertised_url
from tests.integration.client_monitor.conftest import API_HEADERS, scenario

pytestmark = pytest.mark.integration

# The clock does not move in this test: nobody checks in, all 400 stay at risk.
FLEET = {"name": "My Company\\Default", "clients": 400, "heartbeat_s": 3600}


def client(runtime: ServiceRuntime) -> httpx.AsyncClient:
    assert runtime.http_url is not None
    return httpx.AsyncClient(base_url=runtime.http_url, headers=API_HEADERS, timeout=30)


async def owner_of(runtimes: list[ServiceRuntime], watch_id: str) -> ServiceRuntime:
    for _ in range(100):
        for runtime in runtimes:
            async with client(runtime) as api:
                body = (await api.get(f"/v1/watches/{watch_id}")).json()
            # Only the replica that scans it has a table of clients; the other relays its answer.
            if body.get("scan") and body["scan"]["clients_known"]:
                owner = [r for r in runtimes if _runs(r, watch_id)]
                if owner:
                    return owner[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no replica scans the watch")


def _runs(runtime: ServiceRuntime, watch_id: str) -> bool:
    assert runtime.app is not None
    return runtime.app.state.board.scanner(watch_id) is not None


async def test_either_replica_answers_about_a_watch_the_other_scans(make_stack):
    stack = await make_stack(scenario(FLEET))
    replicas = [await stack.start_monitor(), await stack.start_monitor()]
    targets = await stack.disable_verification()
    _, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(days=7))
    await stack.probe.wait_for("PropagationProgressed")
    owner = await owner_of(replicas, watch_id)
    other = next(r for r in replicas if r is not owner)
    assert not _runs(other, watch_id)

    async with client(owner) as asked_owner, client(other) as asked_other:
        for path in (
            f"/v1/watches/{watch_id}/clients",
            f"/v1/watches/{watch_id}/clients?limit=150",
        ):
            direct, relayed = await asked_owner.get(path), await asked_other.get(path)
            assert relayed.status_code == 200, relayed.text
            assert relayed.json() == direct.json()
            assert relayed.headers.get("x-next-cursor") == direct.headers.get("x-next-cursor")
        assert (
            len((await asked_other.get(f"/v1/watches/{watch_id}/clients")).json()["clients"]) == 400
        )
        watch = (await asked_other.get(f"/v1/watches/{watch_id}")).json()
        assert watch["status"] == "open" and watch["scan"]["clients_known"] == 400
        # A proceed reaching the replica that does not scan the watch freezes the list too.
        frozen = await asked_other.post(f"/v1/watches/{watch_id}/accepted-lists", json={})
        assert frozen.status_code == 201, frozen.text
        assert frozen.json()["count"] == 400
        listed = await asked_owner.get(f"/v1/accepted-lists/{frozen.json()['list_id']}/clients")
        assert len(listed.json()["clients"]) == 400

    # The scanning replica stops: the other takes the watch over and answers on its own.
    await owner.stop()
    stack.runtimes.remove(owner)
    async with client(other) as api:
        for _ in range(200):
            answer = await api.get(f"/v1/watches/{watch_id}/clients")
            if answer.status_code == 200:
                break
            assert answer.json()["code"] in ("watch_owner_unavailable", "first_scan_in_progress")
            await asyncio.sleep(0.1)
        assert answer.status_code == 200 and len(answer.json()["clients"]) == 400
    assert _runs(other, watch_id)


def test_a_replica_listening_on_every_interface_advertises_its_host_name(master_key):
    from client_monitor.settings import Settings

    settings = Settings(master_key=master_key, internal_token="internal-token-for-tests-0123")
    url = advertised_url(settings, "http://0.0.0.0:8083")
    assert url is not None and "0.0.0.0" not in url and url.endswith(":8083")
    chosen = settings.model_copy(update={"advertise_url": "https://10.0.0.7:8083"})
    assert advertised_url(chosen, "http://0.0.0.0:8083") == "https://10.0.0.7:8083"
