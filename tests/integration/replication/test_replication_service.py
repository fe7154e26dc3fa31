"""The replication service end to end over Kafka and PostgreSQL, against the twin."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.replication import (
    BreakReplication,
    InspectSite,
    RestoreReplication,
)
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import OutgoingRecord
from certrotate_shared.transport.kafka import KafkaTransport

pytestmark = pytest.mark.integration


def key(saga: str, step: str, attempt: int = 1) -> str:
    return f"{saga}:{step}:{attempt}"


async def test_inspect_reports_version_and_partners_or_a_precise_reason(stack):
    await stack.start_service()
    saga = str(uuid.uuid4())
    good, refused, unreachable = await stack.send(
        InspectSite(idempotency_key=key(saga, "inspect"), site=stack.site),
        # What the inventory says of these sites (see conftest): a refused account, and an
        # address nobody answers.
        InspectSite(
            idempotency_key=key(saga, "inspect", 2),
            site=stack.site.model_copy(update={"site": "site-c"}),
        ),
        InspectSite(
            idempotency_key=key(saga, "inspect", 3),
            site=stack.site.model_copy(update={"site": "site-b"}),
        ),
        saga_id=saga,
    )
    inspected = (await stack.reply(good)).payload
    assert inspected["version"] == "14.3.9000"
    assert inspected["replicated"] is True
    assert {p["name"]: p["status_code"] for p in inspected["partners"]} == {
        "site-b": "SUCCEEDED",
        "site-c": "SUCCEEDED",
    }
    failed = await stack.reply(refused)
    assert failed.type == "SiteInspectionFailed"
    assert "SEPM refused the API account 'admin'" in failed.payload["reason"]
    assert failed.payload["retryable"] is False
    down = await stack.reply(unreachable, timeout=60)
    assert down.payload["reason"] == "cannot reach https://127.0.0.1:1: connection refused"
    assert down.payload["retryable"] is True


async def test_break_then_restore_re_adds_exactly_what_was_broken_and_waits_for_success(stack):
    runtime = await stack.start_service()
    saga = str(uuid.uuid4())
    [broke] = await stack.send(
        BreakReplication(
            idempotency_key=key(saga, "break"), site=stack.site, partners=["site-b", "site-c"]
        ),
        saga_id=saga,
    )
    broken = await stack.reply(broke)
    assert broken.type == "ReplicationBroken"
    assert broken.payload["broken_partners"] == ["site-b", "site-c"]
    assert await stack.partners() == {}
    [restore] = await stack.send(
        RestoreReplication(
            idempotency_key=key(saga, "restore"), site=stack.site, partners=["site-b", "site-c"]
        ),
        saga_id=saga,
    )
    restored = await stack.reply(restore)
    assert restored.type == "ReplicationRestored", restored.payload
    assert {p["name"]: p["status_code"] for p in restored.payload["partners"]} == {
        "site-b": "SUCCEEDED",
        "site-c": "SUCCEEDED",
    }
    partners = await stack.partners()
    assert {name: row["status_code"] for name, row in partners.items()} == {
        "site-b": "SUCCEEDED",
        "site-c": "SUCCEEDED",
    }
    # Both sides of each pair: this site's first, then the partner's. Today's twin removes and
    # re-adds both sides at once, so the partner's side answers "already so" (404 / 409),
    # which is done; a SEPM (or a twin) with per-site partnerships acts there too.
    deletes = await stack.operations("replication.partner.delete")
    adds = await stack.operations("replication.partner.add")
    for partner in ("site-b", "site-c"):
        for entries in (deletes, adds):
            targets = [e["target"] for e in entries]
            assert f"site-a/{partner}" in targets and f"{partner}/site-a" in targets
            assert targets.index(f"site-a/{partner}") < targets.index(f"{partner}/site-a")
    assert len(deletes) == len(adds) == 4
    # The partner re-adds only after this site's data reached it (replication SUCCEEDED).
    far_add = next(e for e in adds if e["target"] == "site-b/site-a")
    assert far_add["idempotency_key"].endswith(":add:site-b:far")
    # What this saga broke and restored, as the service recorded it.
    from replication.adapters import broken_partnerships

    async with runtime.sessions() as session:
        records = await broken_partnerships.broken_partnerships_of(session, saga_id=saga)
    assert [(r["partner"], r["state"]) for r in records] == [
        ("site-b", "restored"),
        ("site-c", "restored"),
    ]


async def test_restore_fails_with_the_status_code_when_replication_fails(stack):
    await stack.start_service()
    saga = str(uuid.uuid4())
    [broke] = await stack.send(
        BreakReplication(idempotency_key=key(saga, "break"), site=stack.site, partners=["site-b"]),
        saga_id=saga,
    )
    assert (await stack.reply(broke)).type == "ReplicationBroken"
    await stack.fault(kind="replication_failure", site="site-a", partner="site-b")
    [restore] = await stack.send(
        RestoreReplication(
            idempotency_key=key(saga, "restore"), site=stack.site, partners=["site-b"]
        ),
        saga_id=saga,
    )
    failed = await stack.reply(restore)
    assert failed.type == "ReplicationRestoreFailed"
    assert failed.payload["status_code"] == "FAILED_CONNECT"
    assert failed.payload["reason"] == "replication with site-b ended FAILED_CONNECT"
    assert failed.payload["retryable"] is True
    # The partnership is back (re-added once); only its replication failed.
    assert "site-b" in await stack.partners()
    # site-b's side is not re-added before site-a's data reached it.
    assert len(await stack.operations("replication.partner.add")) == 1


async def test_a_redelivered_or_resent_break_deletes_each_partner_once(
    stack, kafka_bootstrap, topic_prefix
):
    await stack.start_service()
    saga = str(uuid.uuid4())
    command = BreakReplication(
        idempotency_key=key(saga, "break"), site=stack.site, partners=["site-b"]
    )
    original = Envelope.wrap(command, saga_id=saga)
    resent = Envelope.wrap(command, saga_id=saga)  # new message id, same idempotency key
    topic = commands_topic("replication", topic_prefix)
    producer = KafkaTransport(kafka_bootstrap)
    await producer.start()
    try:
        record = OutgoingRecord(topic, saga, original.to_bytes())
        await producer.publish([record, record])  # delivered twice
        first = await stack.reply(original)
        await producer.publish([OutgoingRecord(topic, saga, resent.to_bytes())])
        second = await stack.reply(resent)
    finally:
        await producer.stop()
    assert first.type == second.type == "ReplicationBroken"
    assert first.payload["broken_partners"] == second.payload["broken_partners"] == ["site-b"]
    await asyncio.sleep(0.5)  # room for a wrong extra reply to the duplicate delivery
    assert len(stack.replies_to(original)) == 1
    deletes = await stack.operations("replication.partner.delete")
    assert [(e["target"], e["replay"]) for e in deletes] == [
        ("site-a/site-b", False),
        ("site-b/site-a", False),
    ]

    # A new attempt of the same step finds the partner gone: ours, reported, not deleted again.
    [retry] = await stack.send(
        BreakReplication(
            idempotency_key=key(saga, "break", 2), site=stack.site, partners=["site-b"]
        ),
        saga_id=saga,
    )
    assert (await stack.reply(retry)).payload["broken_partners"] == ["site-b"]
    # Another saga finds it gone too, but did not break it: not its to restore.
    other = str(uuid.uuid4())
    [foreign] = await stack.send(
        BreakReplication(idempotency_key=key(other, "break"), site=stack.site, partners=["site-b"]),
        saga_id=other,
    )
    assert (await stack.reply(foreign)).payload["broken_partners"] == []
    # The retry asked the partner's side again (its own key; already gone: nothing done);
    # the foreign saga touched neither side.
    deletes = await stack.operations("replication.partner.delete")
    assert [e["target"] for e in deletes] == ["site-a/site-b", "site-b/site-a", "site-b/site-a"]


@pytest.mark.parametrize("twin_speed", [0.0])
async def test_a_restart_resumes_the_wait_for_success(stack):
    runtime = await stack.start_service()
    saga = str(uuid.uuid4())
    [broke] = await stack.send(
        BreakReplication(idempotency_key=key(saga, "break"), site=stack.site, partners=["site-c"]),
        saga_id=saga,
    )
    assert (await stack.reply(broke)).type == "ReplicationBroken"
    [restore] = await stack.send(
        RestoreReplication(
            idempotency_key=key(saga, "restore"), site=stack.site, partners=["site-c"]
        ),
        saga_id=saga,
    )
    # The twin's clock stands still: the run started by the re-add cannot finish.
    while "site-c" not in await stack.partners():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert stack.replies_to(restore) == []
    await stack.stop_service(runtime)
    await stack.clock_speed(600)
    await stack.start_service()
    restored = await stack.reply(restore)
    assert restored.type == "ReplicationRestored"
    assert restored.payload["partners"][0]["status_code"] == "SUCCEEDED"
    adds = await stack.operations("replication.partner.add")
    assert [e["target"] for e in adds] == ["site-a/site-c", "site-c/site-a"]


async def test_python_m_replication_serves_commands_as_its_own_process(
    stack, clean_env, kafka_bootstrap, topic_prefix, master_key, pg_url
):
    from tests.support.processes import REPO, ServiceProcess

    env = {
        **clean_env,
        "PYTHONPATH": str(REPO),
        "CERTROTATE_REPLICATION_DATABASE_URL": pg_url,
        "CERTROTATE_REPLICATION_DATABASE_SCHEMA": stack.settings.database_schema,
        "CERTROTATE_REPLICATION_VAULT_URL": stack.settings.vault_url,
        "CERTROTATE_TRANSPORT": "kafka",
        "CERTROTATE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CERTROTATE_TOPIC_PREFIX": topic_prefix,
        "CERTROTATE_MASTER_KEY": master_key,
        "CERTROTATE_INTERNAL_TOKEN": "internal-token-for-tests-0123456789",
    }
    process = ServiceProcess(["-m", "replication"], env, "replication")
    await process.start()
    # The services run on uvloop (certrotate_shared.event_loop), and say so at start.
    assert "replication: running on uvloop" in process.log_tail()
    try:
        saga = str(uuid.uuid4())
        [inspect] = await stack.send(
            InspectSite(idempotency_key=key(saga, "inspect"), site=stack.site), saga_id=saga
        )
        inspected = await stack.reply(inspect)
        assert inspected.type == "SiteInspected"
        assert [p["name"] for p in inspected.payload["partners"]] == ["site-b", "site-c"]
    finally:
        # In a thread: the twin serves from this event loop, and the service logs out on exit.
        await asyncio.to_thread(process.stop)
    assert process.proc is not None and process.proc.returncode == 0


async def test_a_failed_deletion_is_reported_with_what_was_broken_and_a_retry_finishes(stack):
    await stack.start_service()
    await stack.fault(
        kind="http_error", status=500, path="/replication/partners/site-c/delete", count=1
    )
    saga = str(uuid.uuid4())
    [first] = await stack.send(
        BreakReplication(
            idempotency_key=key(saga, "break"), site=stack.site, partners=["site-b", "site-c"]
        ),
        saga_id=saga,
    )
    failed = await stack.reply(first)
    assert failed.type == "ReplicationBreakFailed"
    assert failed.payload["broken_partners"] == ["site-b"]
    assert failed.payload["retryable"] is True
    assert "could not delete replication partner site-c of site-a" in failed.payload["reason"]
    assert set(await stack.partners()) == {"site-c"}
    [second] = await stack.send(
        BreakReplication(
            idempotency_key=key(saga, "break", 2), site=stack.site, partners=["site-b", "site-c"]
        ),
        saga_id=saga,
    )
    broken = await stack.reply(second)
    assert broken.payload["broken_partners"] == ["site-b", "site-c"]
    deletes = [e for e in await stack.operations("replication.partner.delete") if e["status"] < 400]
    # Each side once: the twin keeps a partner list per site, as SEPM does.
    assert sorted(e["target"] for e in deletes) == [
        "site-a/site-b",
        "site-a/site-c",
        "site-b/site-a",
        "site-c/site-a",
    ]


async def test_a_failure_on_the_partners_side_keeps_this_side_broken_and_restorable(stack):
    """site-a's side is deleted, site-b's side fails: the break fails with site-b counted as
    broken (this site no longer lists it), a retry does only site-b's side, and a restore
    re-adds exactly that partnership."""
    await stack.start_service()
    await stack.fault(
        kind="http_error",
        status=500,
        path="/sites/site-b/replication/partners/site-a/delete",
        count=1,
    )
    saga = str(uuid.uuid4())
    [first] = await stack.send(
        BreakReplication(idempotency_key=key(saga, "break"), site=stack.site, partners=["site-b"]),
        saga_id=saga,
    )
    failed = await stack.reply(first)
    assert failed.type == "ReplicationBreakFailed"
    assert failed.payload["broken_partners"] == ["site-b"]
    assert failed.payload["retryable"] is True
    assert "site-b's side" in failed.payload["reason"]
    assert "site-b" not in await stack.partners()
    [second] = await stack.send(
        BreakReplication(
            idempotency_key=key(saga, "break", 2), site=stack.site, partners=["site-b"]
        ),
        saga_id=saga,
    )
    assert (await stack.reply(second)).payload["broken_partners"] == ["site-b"]
    deletes = await stack.operations("replication.partner.delete")
    # site-a's side once; site-b's side twice (the failed try, then the retry's own key).
    assert [e["target"] for e in deletes] == ["site-a/site-b", "site-b/site-a", "site-b/site-a"]
    [restore] = await stack.send(
        RestoreReplication(
            idempotency_key=key(saga, "restore"), site=stack.site, partners=["site-b"]
        ),
        saga_id=saga,
    )
    restored = await stack.reply(restore)
    assert restored.type == "ReplicationRestored", restored.payload
    assert "site-b" in await stack.partners()
