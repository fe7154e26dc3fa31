"""Propagation watches over real Kafka and PostgreSQL against the twin's fleet."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta

import httpx
import pytest

from certrotate_shared.messages.client_monitor import CancelPropagationWatch
from tests.integration.client_monitor.conftest import API_HEADERS, scenario

pytestmark = pytest.mark.integration

PULL = {"name": "My Company\\Default", "clients": 240, "mode": "pull", "heartbeat_s": 300}
PUSH = {"name": "My Company\\Laptops", "clients": 60, "mode": "push"}


async def test_watch_reports_progress_then_policy_propagated_once_clients_check_in(make_stack):
    stack = await make_stack(scenario(PULL, PUSH))
    monitor = await stack.start_monitor()
    targets = await stack.disable_verification()
    saga_id, watch_id, sent = await stack.watch(targets, deadline_in=timedelta(days=7))

    first = await stack.probe.wait_for("PropagationProgressed")
    counts = first.payload
    assert counts["total"] == 300
    assert counts["reached"] < 300, "pull clients cannot have the policy before a heartbeat"
    assert counts["orphan_risk"] == counts["pending_online"] + counts["pending_offline"]

    await stack.advance(600)  # two heartbeats: every pull client checks in
    done = await stack.probe.wait_for("PolicyPropagated")
    assert done.payload["reached"] == 300
    assert done.payload["orphan_risk"] == 0
    assert done.payload["percent"] == 100.0
    assert done.saga_id == saga_id
    assert done.causation_id == str(sent.message_id)

    async with httpx.AsyncClient(base_url=monitor.http_url, headers=API_HEADERS) as api:
        body = (await api.get(f"/v1/watches/{watch_id}")).json()
        assert body["status"] == "propagated"
        assert body["counts"]["reached"] == 300
        # Opened and closed on the service's clock (the twin's here, which only moves when
        # the test advances it), so the watch's record reads as the rehearsal ran.
        closed_at = datetime.fromisoformat(body["closed_at"])
        assert closed_at == await stack.twin_now()
        assert closed_at - datetime.fromisoformat(body["opened_at"]) >= timedelta(seconds=600)
        missing = await api.get("/v1/watches/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_clients_of_every_domain_are_watched_and_counted(make_stack):
    # The API account logs on to the Default domain; EMEA's clients are at risk just the same.
    emea = {"name": "My Company\\Paris", "domain": "EMEA", "clients": 40, "heartbeat_s": 300}
    stack = await make_stack(scenario(PULL, emea))
    await stack.start_monitor()
    targets = await stack.disable_verification()
    assert any(t.full_path_name.endswith("Paris") for t in targets)
    await stack.watch(targets, deadline_in=timedelta(days=7))
    first = await stack.probe.wait_for("PropagationProgressed")
    assert first.payload["total"] == 280
    assert first.payload["orphan_risk"] == 280 - first.payload["reached"]
    await stack.advance(600)
    done = await stack.probe.wait_for("PolicyPropagated")
    assert done.payload["reached"] == 280


async def test_clients_of_an_inheriting_group_must_reach_their_owners_new_policy(make_stack):
    kiosks = {"name": "My Company\\Default\\Kiosks", "clients": 30, "inherits": True}
    stack = await make_stack(scenario(PULL, kiosks))
    await stack.start_monitor()
    targets = await stack.disable_verification()
    by_path = {t.full_path_name: t for t in targets}
    assert by_path["My Company\\Default\\Kiosks"].target_serial == (
        by_path["My Company\\Default"].target_serial
    )
    await stack.watch(targets, deadline_in=timedelta(days=7))
    first = await stack.probe.wait_for("PropagationProgressed")
    assert first.payload["total"] == 270
    assert first.payload["reached"] < 270
    await stack.advance(600)
    done = await stack.probe.wait_for("PolicyPropagated")
    assert done.payload["reached"] == 270


async def test_the_watch_closes_at_the_threshold_the_command_asked_for(make_stack):
    slow = {**PULL, "heartbeat_s": 86_400}  # pull clients: a day; push clients: a minute
    stack = await make_stack(scenario(slow, PUSH))
    await stack.start_monitor()
    targets = await stack.disable_verification()
    await stack.watch(targets, deadline_in=timedelta(days=7), threshold=0.2)
    await stack.advance(120)
    done = await stack.probe.wait_for("PolicyPropagated")
    # The 60 push clients are 20 % of the fleet: enough for this watch, long before the rest.
    assert 60 <= done.payload["reached"] < 300
    assert done.payload["percent"] >= 20.0


async def test_a_watch_that_cannot_end_is_refused_for_good(make_stack):
    stack = await make_stack(scenario(PUSH))
    await stack.start_monitor()
    targets = await stack.disable_verification()
    for terms, words in (
        ({"threshold": 1.5}, "threshold must be in (0, 1]"),
        ({"threshold": 0.0}, "threshold must be in (0, 1]"),
        ({"stale_horizon_days": 0}, "stale_horizon_days must be positive"),
    ):
        _, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(days=7), **terms)
        failed = await stack.probe.wait_for(
            "PropagationWatchFailed", where=lambda e, w=watch_id: e.payload["watch_id"] == w
        )
        assert words in failed.payload["reason"] and failed.payload["retryable"] is False
    _, watch_id, _ = await stack.watch([], deadline_in=timedelta(days=7))
    failed = await stack.probe.wait_for(
        "PropagationWatchFailed", where=lambda e: e.payload["watch_id"] == watch_id
    )
    assert "names no groups" in failed.payload["reason"]


async def test_offline_clients_beyond_the_horizon_are_stale_and_fetched_as_csv(make_stack):
    away = {**PULL, "offline": {"fraction": 0.1, "days": 60}}
    stack = await make_stack(scenario(away))
    monitor = await stack.start_monitor()
    await stack.advance(40 * 86_400)  # the offline clients were last seen 40 days ago
    targets = await stack.disable_verification()
    _, watch_id, _ = await stack.watch(
        targets, deadline_in=timedelta(days=7), stale_horizon_days=30
    )
    progress = await stack.probe.wait_for("PropagationProgressed")
    assert progress.payload["stale"] == 24
    assert progress.payload["pending_offline_by_days"]["30+"] == 24

    async with httpx.AsyncClient(base_url=monitor.http_url, headers=API_HEADERS) as api:
        live = await api.get(f"/v1/watches/{watch_id}/clients?status=stale&format=csv")
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(live.text)))
        assert len(rows) == 24
        assert {r["groupFullPathName"] for r in rows} == {"My Company\\Default"}
        assert all(r["onlineStatus"] == "0" and float(r["daysOffline"]) >= 40 for r in rows)
        for row in rows[:3]:  # the twin agrees they are away
            truth = (await stack.http.get(f"/twin/v1/clients/{row['uniqueId']}")).json()
            assert truth["online"] is False

        await stack.advance(600)
        done = await stack.probe.wait_for("PolicyPropagated")
        assert done.payload["stale"] == 24  # listed, not waited on
        assert done.payload["orphan_risk"] == 24

        # After the watch closed, the list is still there for remediation.
        saved = await api.get(f"/v1/watches/{watch_id}/clients?status=at_risk&format=csv")
        assert [r["uniqueId"] for r in csv.DictReader(io.StringIO(saved.text))] == [
            r["uniqueId"] for r in rows
        ]
        assert (await api.get(f"/v1/watches/{watch_id}/clients?status=straggler")).json()[
            "clients"
        ] == []


async def test_deadline_passes_with_stragglers_and_the_watch_stalls(make_stack):
    slow = {**PULL, "clients": 100, "heartbeat_s": 86_400}
    stack = await make_stack(scenario(slow))
    monitor = await stack.start_monitor()
    targets = await stack.disable_verification()
    _, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(hours=1))
    first = (await stack.probe.wait_for("PropagationProgressed")).payload
    # Most clients have yet to reach: the forecast is unknown or later, never "done now".
    forecast = first["forecast_complete_at"]
    observed = datetime.fromisoformat(first["observed_at"])
    assert forecast is None or datetime.fromisoformat(forecast) > observed
    await stack.advance(2 * 3600)
    stalled = await stack.probe.wait_for("PropagationStalled")
    pending = stalled.payload["pending_online"]
    assert 0 < pending < 100, "some clients checked in within 2 of their 24 hours"
    assert stalled.payload["reached"] + pending == 100
    assert "deadline" in stalled.payload["reason"]
    assert f"{pending} stragglers" in stalled.payload["reason"]
    async with httpx.AsyncClient(base_url=monitor.http_url, headers=API_HEADERS) as api:
        listed = (await api.get(f"/v1/watches/{watch_id}/clients?status=straggler")).json()
    assert listed["watch_status"] == "stalled"
    assert len(listed["clients"]) == pending
    assert not stack.probe.of("PolicyPropagated")


async def test_token_expiry_and_a_429_storm_during_scans_do_not_break_the_watch(make_stack):
    stack = await make_stack(scenario(PULL, PUSH), page_size=25)
    await stack.start_monitor()
    targets = await stack.disable_verification()
    await stack.watch(targets, deadline_in=timedelta(days=7))
    await stack.probe.wait_for("PropagationProgressed")
    # The next scans meet an expired token and a run of 429s on /computers.
    for fault in (
        {
            "kind": "throttle",
            "site": "site-a",
            "path": "/computers",
            "count": 4,
            "retry_after_s": 1,
        },
        {"kind": "token_expiry", "site": "site-a", "path": "/computers", "count": 2},
    ):
        created = await stack.http.post("/twin/v1/faults", json=fault)
        assert created.status_code == 201, created.text
    await stack.advance(600)
    done = await stack.probe.wait_for("PolicyPropagated", timeout=60)
    assert done.payload["reached"] == 300
    assert (await stack.http.get("/twin/v1/faults")).json() == [], "every fault fired"
    assert not stack.probe.of("PropagationWatchFailed")


async def test_a_restarted_service_resumes_its_open_watch(make_stack):
    stack = await make_stack(scenario(PULL))
    first = await stack.start_monitor()
    targets = await stack.disable_verification()
    saga_id, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(days=7))
    await stack.probe.wait_for("PropagationProgressed")
    await first.stop()
    stack.runtimes.remove(first)

    await stack.advance(600)  # the fleet moves on while the service is down
    second = await stack.start_monitor()
    done = await stack.probe.wait_for("PolicyPropagated")
    assert done.saga_id == saga_id
    assert done.payload["watch_id"] == watch_id
    assert done.payload["reached"] == 240
    async with httpx.AsyncClient(base_url=second.http_url, headers=API_HEADERS) as api:
        assert (await api.get(f"/v1/watches/{watch_id}")).json()["status"] == "propagated"
    assert len(stack.probe.of("PolicyPropagated")) == 1


async def test_a_cancelled_watch_stops_and_a_closed_one_answers_a_new_attempt(make_stack):
    stack = await make_stack(scenario(PULL))
    monitor = await stack.start_monitor()
    targets = await stack.disable_verification()
    saga_id, watch_id, _ = await stack.watch(targets, deadline_in=timedelta(days=7))
    await stack.probe.wait_for("PropagationProgressed")
    await stack.probe.send(
        CancelPropagationWatch(idempotency_key=f"{saga_id}:cancel:1", watch_id=watch_id), saga_id
    )
    async with httpx.AsyncClient(base_url=monitor.http_url, headers=API_HEADERS) as api:
        for _ in range(50):
            if (await api.get(f"/v1/watches/{watch_id}")).json()["status"] == "cancelled":
                break
            await asyncio.sleep(0.1)
        assert (await api.get(f"/v1/watches/{watch_id}")).json()["status"] == "cancelled"
    await stack.advance(600)
    await asyncio.sleep(1.0)  # room for a wrong PolicyPropagated to show up
    assert not stack.probe.of("PolicyPropagated")

    # A second watch runs to the end; a later attempt of the same watch gets its outcome.
    saga_id, watch_id, first = await stack.watch(targets, deadline_in=timedelta(days=7))
    done = await stack.probe.wait_for("PolicyPropagated")
    command = first.message().model_copy(update={"idempotency_key": f"{saga_id}:await:2"})
    again = await stack.probe.send(command, saga_id)
    replayed = await stack.probe.wait_for(
        "PolicyPropagated", where=lambda e: e.causation_id == str(again.message_id)
    )
    assert replayed.payload == done.payload
