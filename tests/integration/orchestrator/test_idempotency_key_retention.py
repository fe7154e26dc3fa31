"""The Idempotency-Key of a POST that started a rotation is remembered while the rotation lives
and `idempotency_key_days` after it ended: an ITSM retrying the POST days later still gets its
rotation (200), not a second one; only then does the retention job forget the key, in batches.
On real PostgreSQL and on SQLite (the embedded mode)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from orchestrator.adapters import idempotency_keys as keys_adapter
from orchestrator.adapters.orm import idempotency_keys
from orchestrator.adapters.repository import to_db
from orchestrator.settings import Settings as OrchestratorSettings
from tests.integration.orchestrator.support import wait_until
from tests.integration.orchestrator.test_retention import DAY, Estate, _run_due, estate

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, pg_url, pg_schemas) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.append(schema)
    return {"database_url": pg_url, "database_schema": schema}


@pytest.fixture
async def ended(tmp_path, master_key, database) -> AsyncIterator[Estate]:
    async for env in estate(tmp_path, master_key, **database):
        yield env


@pytest.fixture
async def waiting(tmp_path, master_key, database) -> AsyncIterator[Estate]:
    async for env in estate(tmp_path, master_key, propagate=False, **database):
        yield env


async def remembered(env: Estate) -> list[str]:
    async with env.hooks.runtime.uow() as uow:
        return sorted((await uow.session.execute(select(idempotency_keys.c.key))).scalars())


def window_days(env: Estate) -> float:
    settings = env.hooks.runtime.settings
    assert isinstance(settings, OrchestratorSettings)
    return settings.idempotency_key_days


async def test_a_retried_post_gets_its_rotation_until_the_window_after_its_end(ended) -> None:
    env = ended
    body = {"site": "site-a", "certificate": env.certificate("site-a")}
    headers = {"Idempotency-Key": "CHG0031337"}
    first = await env.hooks.api.post("/v1/rotations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    saga = first.json()["id"]

    async def completed() -> bool:
        return (await env.hooks.rotation(saga))["state"] == "completed"

    await wait_until(completed)
    run_due = _run_due(env.hooks)
    env.clock.advance((window_days(env) - 1) * DAY)
    counts = await run_due()
    assert counts is not None and counts["idempotency_keys"] == 0
    # The ITSM's retry, days after the rotation ended: the same rotation, nothing started.
    again = await env.hooks.api.post("/v1/rotations", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == saga

    env.clock.advance(2 * DAY)
    counts = await run_due()
    assert counts is not None and counts["idempotency_keys"] == 1
    assert await remembered(env) == []


async def test_a_live_rotations_key_is_kept_however_old(waiting) -> None:
    env = waiting
    body = {"site": "site-a", "certificate": env.certificate("site-a")}
    headers = {"Idempotency-Key": "CHG0042"}
    first = await env.hooks.api.post("/v1/rotations", json=body, headers=headers)
    assert first.status_code == 201, first.text
    await env.hooks.worker.wait_for(AwaitPolicyPropagation)

    env.clock.advance(3 * window_days(env) * DAY)  # still waiting for its clients
    counts = await _run_due(env.hooks)()
    assert counts is not None and counts["idempotency_keys"] == 0
    # Not 409 site_busy: the retry is told the rotation it started.
    again = await env.hooks.api.post("/v1/rotations", json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await remembered(env) == ["CHG0042"]


async def test_expired_keys_go_in_batches_and_younger_ones_stay(ended) -> None:
    env = ended
    rotation = await env.rotation("site-a")
    saga = rotation["id"]

    async def completed() -> bool:
        return (await env.hooks.rotation(saga))["state"] == "completed"

    await wait_until(completed)
    # Keys of retried requests that all named this rotation (as a replica race can leave).
    old = [f"itsm-{n}" for n in range(7)]
    async with env.hooks.runtime.uow() as uow:
        await uow.session.execute(
            insert(idempotency_keys),
            [
                {"key": k, "body_hash": "0" * 64, "saga_id": saga,
                 "created_at": to_db(env.clock.now())}
                for k in old
            ],
        )  # fmt: skip
        await uow.commit()
    ended_at = env.clock.now()

    # The rotation ended after this cut-off: its keys are still young.
    young = await keys_adapter.purge_expired(
        env.hooks.runtime.uow, ended_before=to_db(ended_at - timedelta(days=1)), batch=3
    )
    assert young == 0 and await remembered(env) == sorted(old)

    deleted = await keys_adapter.purge_expired(
        env.hooks.runtime.uow, ended_before=to_db(ended_at + timedelta(days=1)), batch=3
    )
    assert deleted == len(old)
    async with env.hooks.runtime.uow() as uow:
        left = (
            await uow.session.execute(select(func.count()).select_from(idempotency_keys))
        ).scalar_one()
    assert left == 0
