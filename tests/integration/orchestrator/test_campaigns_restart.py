"""A campaign on PostgreSQL survives its orchestrator: a second replica carries it to the end."""

from __future__ import annotations

import uuid

import pytest

from certrotate_shared.clock import ManualClock
from certrotate_shared.transport.local import LocalTransport
from tests.integration.orchestrator.harness import api_client, orchestrator
from tests.integration.orchestrator.support import (
    ADMIN,
    INTERNAL,
    StandInWorker,
    server_body,
    site_body,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_a_campaign_carries_on_after_its_orchestrator_stops_mid_rotation(
    pg_url, master_key, pg_schemas, tmp_path
):
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.extend([schema, f"{schema}_vault"])
    settings = {
        "database_url": pg_url, "database_schema": schema, "vault_url": pg_url,
        "vault_schema": f"{schema}_vault",  # its own: others' entries are under other keys
        "transport": "local", "local_log_path": str(tmp_path / "bus.db"),
        "master_key": master_key, "admin_token": ADMIN, "internal_token": INTERNAL,
        "rehearsal": True,
        "timer_poll_seconds": 0.05,
    }  # fmt: skip
    clock = ManualClock()
    first = orchestrator(settings, clock=clock)
    await first.start(serve_http=False)
    async with api_client(first) as api:
        for name, partners in (("site-a", ["site-b"]), ("site-b", []), ("site-c", []),
                               ("site-d", [])):  # fmt: skip
            assert (await api.post("/v1/sites", json=site_body(name, partners))).status_code == 201
            server = await api.post("/v1/servers", json=server_body(f"{name}-s1", name))
            assert server.status_code == 201
        created = await api.post(
            "/v1/campaigns",
            json={"name": "restart", "max_concurrent": 2,
                  "plan": {"waves": [["site-c"], ["site-a", "site-b", "site-d"]]},
                  "certificate": {"format": "pkcs12", "data_b64": "AAAA", "password": "p"}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        # No worker runs yet: the canary's rotation is started and waits for its answers.
        assert created.json()["sites_by_state"] == {"running": 1, "pending": 3}
    # A second replica drives the same campaign; the first one then goes away mid-rotation.
    second = orchestrator(settings, clock=clock)
    await second.start(serve_http=False)
    await first.stop()
    worker = StandInWorker(
        bus=LocalTransport(str(tmp_path / "bus.db")),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/standin.db",
        transport="local", local_log_path=str(tmp_path / "bus.db"), master_key=master_key,
    )  # fmt: skip
    await worker.runtime.start()
    try:
        async with api_client(second) as api:
            view: dict = {}

            async def ended() -> bool:
                view.update((await api.get(f"/v1/campaigns/{campaign_id}")).json())
                return view["state"] in ("completed", "halted", "cancelled", "aborted")

            await wait_until(ended, timeout=120)
            assert view["state"] == "completed", view
            assert view["sites_by_state"] == {"completed": 4}
            rotations = (await api.get("/v1/rotations", params={"limit": 50})).json()["items"]
            # Exactly one rotation per site, although two replicas drove the campaign.
            assert sorted(r["site"] for r in rotations) == ["site-a", "site-b", "site-c", "site-d"]
            started = [e["site"] for e in view["events"] if e["type"] == "SiteStarted"]
            assert sorted(started) == ["site-a", "site-b", "site-c", "site-d"]
    finally:
        await worker.runtime.stop()
        await second.stop()


async def test_a_site_waiting_for_its_window_starts_when_it_opens_after_a_restart(
    pg_url, master_key, pg_schemas, tmp_path
):
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.extend([schema, f"{schema}_vault"])
    settings = {
        "database_url": pg_url, "database_schema": schema, "vault_url": pg_url,
        "vault_schema": f"{schema}_vault",  # its own: others' entries are under other keys
        "transport": "local", "local_log_path": str(tmp_path / "bus.db"),
        "master_key": master_key, "admin_token": ADMIN, "internal_token": INTERNAL,
        "rehearsal": True, "timer_poll_seconds": 0.05,
    }  # fmt: skip
    clock = ManualClock()  # Monday 2026-01-05 09:00 UTC, 18:00 in Tokyo
    # Tokyo's window opens at 02:00 JST (17:00 UTC) for an hour.
    tokyo = {"cron": "0 2 * * *", "duration_minutes": 60, "timezone": "Asia/Tokyo"}
    first = orchestrator(settings, clock=clock)
    await first.start(serve_http=False)
    async with api_client(first) as api:
        for name, window in (("site-tokyo", tokyo), ("site-lon", None)):
            body = {**site_body(name), "maintenance_window": window}
            created = await api.post("/v1/sites", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["maintenance_window"] == window
            server = await api.post("/v1/servers", json=server_body(f"{name}-s1", name))
            assert server.status_code == 201
        created = await api.post(
            "/v1/campaigns",
            json={"name": "windows", "max_concurrent": 2,
                  "plan": {"waves": [["site-tokyo", "site-lon"]]},
                  "certificate": {"format": "pkcs12", "data_b64": "AAAA", "password": "p"}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        sites = {s["site"]: s for w in created.json()["plan"] for s in w["sites"]}
        assert sites["site-lon"]["status"] == "running"  # no window: starts at once
        assert sites["site-tokyo"]["status"] == "pending"
        assert sites["site-tokyo"]["opens_at"] == "2026-01-05T17:00:00Z"
    await first.stop()
    # The orchestrator restarts while the site waits; the wait is in the campaign's row.
    second = orchestrator(settings, clock=clock)
    await second.start(serve_http=False)
    worker = StandInWorker(
        bus=LocalTransport(str(tmp_path / "bus.db")),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/standin.db",
        transport="local", local_log_path=str(tmp_path / "bus.db"), master_key=master_key,
    )  # fmt: skip
    await worker.runtime.start()
    try:
        async with api_client(second) as api:
            view: dict = {}

            def site(name: str) -> dict:
                return next(s for w in view["plan"] for s in w["sites"] if s["site"] == name)

            async def refresh() -> dict:
                view.update((await api.get(f"/v1/campaigns/{campaign_id}")).json())
                return view

            async def london_done() -> bool:
                return site("site-lon")["status"] == "completed" if await refresh() else False

            await wait_until(london_done, timeout=60)
            # London's rotation ended on the restarted orchestrator; Tokyo still waits.
            assert site("site-tokyo")["status"] == "pending"
            assert "maintenance window" in site("site-tokyo")["note"]
            clock.advance(8 * 3600 + 60)  # 17:01 UTC: 02:01 in Tokyo

            async def tokyo_started() -> bool:
                await refresh()
                return site("site-tokyo")["rotation_id"] is not None

            await wait_until(tokyo_started, timeout=60)
            rotation = (await api.get(f"/v1/rotations/{site('site-tokyo')['rotation_id']}")).json()
            # Its swap is held to the same window (services restart only inside it).
            assert rotation["options"]["maintenance_window"] == tokyo
            awaits = [e for e in view["events"] if e["type"] == "SiteAwaitsWindow"]
            assert [(e["site"], e["opens_at"]) for e in awaits] == [
                ("site-tokyo", "2026-01-05T17:00:00+00:00")
            ]  # fmt: skip
    finally:
        await worker.runtime.stop()
        await second.stop()
