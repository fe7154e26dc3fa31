"""Bundle lifetime and retention: the orchestrator with the real certificates service (its
store, its TTL purge, its pre-flight), stand-in workers for the saga's commands, one clock.

A rotation waiting weeks for its clients, and a campaign whose next site waits for an approval,
keep their certificates past the store's TTL. What an ended rotation left behind (its bundle,
the verification values and backup records the certificates worker kept) is purged by the
retention job once the retention period is over, and the job's schedule survives a restart."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from certificates.adapters.orm import bundles, server_backups, verification_originals
from certificates.adapters.store import SqlCertificateStore
from certificates.service_layer.housekeeping import purge_once
from certificates.service_layer.store import Original
from certrotate_shared.clock import ManualClock
from certrotate_shared.envelope import utcnow
from certrotate_shared.hostops import CertificateBackup
from certrotate_shared.leases import Lease
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.secretbox import SecretBox
from certrotate_shared.tables import inbox
from certrotate_shared.wiring import inject
from orchestrator.adapters import periodic_jobs
from orchestrator.service_layer import retention_job
from orchestrator.settings import Settings as OrchestratorSettings
from tests.integration.orchestrator.real_certificates import with_real_certificates
from tests.integration.orchestrator.support import INTERNAL, wait_until
from tests.integration.orchestrator.webhook_support import Hooks
from tests.support.pki import TestCA, now_utc

pytestmark = pytest.mark.integration

DAY = 86400.0
NAMES = {"site-a": ["sepm-a1.corp", "sepm-a2.corp"], "site-c": ["site-c-s1.corp"],
         "site-d": ["site-d-s1.corp"]}  # fmt: skip


@dataclass
class Estate:
    hooks: Hooks
    certificates: ServiceRuntime
    clock: ManualClock
    ca: TestCA

    async def count(self, table: Any, **where: str) -> int:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        async with self.certificates.uow() as uow:
            return int((await uow.session.execute(query)).scalar_one())

    def certificate(self, *sites: str) -> dict[str, Any]:
        names = [n for site in sites for n in NAMES[site]]
        return self.ca.issue(names, days=400).upload("pem")

    async def rotation(self, site: str = "site-a") -> dict[str, Any]:
        body = {"site": site, "certificate": self.certificate(site)}
        created = await self.hooks.api.post("/v1/rotations", json=body)
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def deletion_requested(self, saga: str) -> list[Any]:
        query = select(server_backups.c.deletion_requested_at).where(
            server_backups.c.saga_id == saga
        )
        async with self.certificates.uow() as uow:
            return list((await uow.session.execute(query)).scalars())

    async def purge_by_ttl(self) -> list[str]:
        assert isinstance(self.certificates.spec.api, functools.partial)  # built with its deps
        deps = self.certificates.spec.api.keywords["deps"]
        return await purge_once(self.certificates, deps)


async def estate(tmp_path: Path, master_key: str, **overrides: Any) -> AsyncIterator[Estate]:
    clock = ManualClock(now_utc())
    async for hooks, certificates in with_real_certificates(
        tmp_path, master_key, clock=clock, sites=["site-c", "site-d"], **overrides
    ):
        yield Estate(hooks, certificates, clock, TestCA.root().intermediate())


@pytest.fixture
async def waiting(tmp_path, master_key) -> AsyncIterator[Estate]:
    async for env in estate(tmp_path, master_key, propagate=False):
        yield env


async def test_a_long_wait_or_a_campaign_turn_outlasts_the_store_ttl(waiting):
    env = waiting
    rotation = await env.rotation("site-a")
    await env.hooks.worker.wait_for(AwaitPolicyPropagation)
    campaign = await env.hooks.api.post(
        "/v1/campaigns",
        json={"name": "renewal", "plan": {"waves": [["site-c"], ["site-d"]]},
              "approve_each_wave": True,
              "certificates": {s: env.certificate(s) for s in ("site-c", "site-d")}},
    )  # fmt: skip
    assert campaign.status_code == 201, campaign.text
    assert await env.count(bundles) == 3

    # Past the store's TTL: the rotation still waits for its clients (or a decision), the
    # campaign's second site for its wave's approval. Nothing of theirs may go.
    ttl = env.certificates.settings.bundle_ttl_s
    env.clock.advance(ttl + DAY)
    assert await env.purge_by_ttl() == []
    assert await env.count(bundles) == 3
    assert (await env.hooks.rotation(rotation["id"]))["state"] in ("running", "paused")

    # A bundle pre-flighted for a request that then failed is nobody's: it still expires.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.certificates.app), base_url="http://certificates",
        headers={"X-Certrotate-Internal-Token": INTERNAL},
    ) as direct:  # fmt: skip
        stray = await direct.post("/internal/v1/bundles", json=env.certificate("site-a"))
    assert stray.status_code == 201, stray.text
    env.clock.advance(ttl + DAY)
    assert await env.purge_by_ttl() == [stray.json()["bundle_ref"]]
    assert await env.count(bundles) == 3


async def test_leftovers_are_purged_after_the_retention_period_by_a_durable_job(
    tmp_path, master_key
):
    async for env in estate(tmp_path, master_key):
        await _retention_scenario(env)


async def _retention_scenario(env: Estate) -> None:
    hooks = env.hooks
    settings = hooks.runtime.settings
    assert isinstance(settings, OrchestratorSettings)
    rotation = await env.rotation("site-a")

    async def ended() -> bool:
        return (await hooks.rotation(rotation["id"]))["state"] == "completed"

    await wait_until(ended)
    saga = rotation["id"]
    # What the certificates worker kept for this rotation (the stand-in worker answered the
    # commands, so the records are written here as the real worker would have).
    # The store's box seals uploaded bundles only; none is stored through it here.
    store = SqlCertificateStore(env.certificates.sessions, SecretBox(bytes(32)), env.clock)
    await store.record_original(saga, "site-a", Original("g1", "l1", "My Company\\Default", True))
    await store.record_backup(saga, "site-a", "sepm-a1", CertificateBackup("bk-1", "ab" * 32))
    uploaded = await hooks.api.post(
        "/v1/bundles", json={**env.certificate("site-a"), "description": "spare"}
    )
    assert uploaded.status_code == 201, uploaded.text
    assert await env.count(bundles) == 2  # the rotation's own copy (its purge went to a stand-in)

    run_due = _run_due(hooks)
    env.clock.advance((settings.retention_days - 1) * DAY)
    first = await run_due()
    assert first is not None and first["rotations"] == 0
    assert await env.count(server_backups, saga_id=saga) == 1
    # Not due again until its interval has passed, on any replica, even after a restart.
    assert await run_due() is None
    await hooks.restart()
    run_due = _run_due(hooks)
    assert await run_due() is None

    env.clock.advance(2 * DAY)
    second = await run_due()
    assert second is not None and second["rotations"] == 1
    # The backup's record stays until its files are deleted from the host (a job of the
    # certificates service: tests/integration/certificates/test_backup_retention.py).
    [requested] = await env.deletion_requested(saga)
    assert requested is not None
    assert await env.count(verification_originals, saga_id=saga) == 0
    # The workers are told in the same transaction that marked the rotation purged.
    await wait_until(functools.partial(_told, hooks, saga, {"replication", "client-monitor"}))
    # Their answers land in the rotation's history: where each piece went, and when.
    await wait_until(functools.partial(_purged_in_history, hooks, saga))
    assert await env.count(bundles) == 1  # the uploaded one, used 31 days ago at most
    # The rotation itself, and its history, stay readable.
    assert (await hooks.rotation(saga))["state"] == "completed"

    env.clock.advance(settings.uploaded_bundle_days * DAY)
    third = await run_due()
    assert third is not None and third["uploaded_bundles"] == 1
    assert await env.count(bundles) == 0
    assert (await hooks.api.get("/v1/bundles")).json()["items"] == []
    async with hooks.runtime.uow() as uow:
        due = await periodic_jobs.due_at(uow.session, retention_job.JOB)
    assert due == env.clock.now() + timedelta(seconds=settings.retention_interval_seconds)


async def _told(hooks: Hooks, saga: str, services: set[str]) -> bool:
    told = {
        (e.saga_id, e.message().target_service)  # type: ignore[attr-defined]
        for e in hooks.worker.envelopes
        if e.type == "PurgeRotationRecords"
    }
    return told == {(saga, s) for s in services}


async def _purged_in_history(hooks: Hooks, saga: str) -> bool:
    response = await hooks.api.get(f"/v1/rotations/{saga}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    purged = [e for e in response.json()["items"] if e.get("type") == "RotationRecordsPurged"]
    return sorted(e["detail"]["service"] for e in purged) == ["client-monitor", "replication"]


def _run_due(
    hooks: Hooks, replica: str | None = None
) -> Callable[[], Awaitable[dict[str, int] | None]]:
    """The replica's retention job with its dependencies bound, as its bootstrap binds them
    (`replica`: another replica's name, on the same database)."""
    assert hooks.runtime.app is not None
    named = hooks.runtime.app.state.deps.named()
    return inject(retention_job.run_due, {**named, **({"replica": replica} if replica else {})})


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_two_replicas_run_the_job_once(tmp_path, master_key, pg_url, pg_schemas, database):
    overrides: dict[str, Any] = {}
    if database == "postgres":
        schema = f"orch_{uuid.uuid4().hex[:8]}"
        pg_schemas.append(schema)
        overrides = {"database_url": pg_url, "database_schema": schema}
    async for env in estate(tmp_path, master_key, **overrides):
        replicas = [_run_due(env.hooks, replica=f"orchestrator-{n}") for n in range(4)]
        env.clock.advance(10 * DAY)
        results = await asyncio.gather(*(run_due() for run_due in replicas))
        assert sum(r is not None for r in results) == 1
        # Done for this interval: no replica runs it again before the next one.
        assert [await run_due() for run_due in replicas] == [None] * 4


async def test_a_run_cut_short_is_taken_up_by_its_replica_again_not_a_day_later(
    tmp_path, master_key
):
    """A replica killed mid-run leaves its hold (the shared lease of long-running work): the
    same replica, restarted under its instance_id, runs the job at once; another replica waits
    for the hold to run out (real seconds), rather than for the next interval."""
    async for env in estate(tmp_path, master_key):
        env.clock.advance(10 * DAY)
        async with env.hooks.runtime.uow() as uow:
            await periodic_jobs.ensure(uow.session, retention_job.JOB, due_at=env.clock.now())
            due = periodic_jobs.due_jobs(env.clock.now())
            killed = Lease(due, owner="orchestrator-a", seconds=600)
            assert await killed.take(uow.session, retention_job.JOB)
            await uow.commit()

        assert await _run_due(env.hooks, replica="orchestrator-b")() is None
        assert await _run_due(env.hooks, replica="orchestrator-a")() is not None
        async with env.hooks.runtime.uow() as uow:
            row = await periodic_jobs.row(uow.session, retention_job.JOB)
        assert row is not None and row.owner is None and row.last_error is None


async def test_the_job_forgets_events_handled_longer_ago_than_the_inbox_window(
    tmp_path, master_key
):
    """The orchestrator's inbox (every event it ever handled) is bounded by the same job; an
    event still inside the window stays known, so a redelivery of it is still ignored."""
    async for env in estate(tmp_path, master_key):
        runtime = env.hooks.runtime
        now = utcnow()  # the inbox and Kafka count wall-clock time, not the saga clock
        old = [f"old-{n}" for n in range(3)]
        rows = [(m, now - timedelta(days=31)) for m in old]
        rows += [("recent", now - timedelta(days=20)), ("today", now)]
        async with runtime.uow() as uow:
            await uow.session.execute(
                insert(inbox),
                [
                    {"message_id": m, "message_type": "ReplicationBroken", "received_at": at}
                    for m, at in rows
                ],
            )
            await uow.commit()

        env.clock.advance(2 * DAY)  # the job ran at start; its next run is due
        counts = await _run_due(env.hooks)()

        assert counts is not None and counts["inbox"] == 3
        async with runtime.uow() as uow:
            left = set((await uow.session.execute(select(inbox.c.message_id))).scalars())
        assert "recent" in left and not left & set(old)
