"""API tokens (issue 11, Low): an optional expiry, names unique among live tokens in the
database itself, a bootstrap admin token that can be revoked, and failed authentications
limited per client address (429 with Retry-After)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from orchestrator.adapters.auth_failure_rows import auth_failures
from orchestrator.adapters.orm import api_tokens
from orchestrator.adapters.repository import to_db
from tests.integration.orchestrator.harness import Embedded
from tests.integration.orchestrator.support import ADMIN

pytestmark = pytest.mark.integration


def client(env: Embedded, token: str | None, address: str = "10.1.1.1") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert env.runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.runtime.app, client=(address, 40000)),
        base_url="http://orch", headers=headers,
    )  # fmt: skip


async def make_token(env: Embedded, name: str, role: str = "viewer", **extra: Any) -> dict:
    made = await env.api.post("/v1/tokens", json={"name": name, "role": role, **extra})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_token_with_an_expiry_is_refused_once_it_has_passed(embedded):
    env = embedded
    until = env.clock.now() + timedelta(days=7)
    token = await make_token(env, "itsm-week", expires_at=until.isoformat())
    assert token["expires_at"].startswith(until.isoformat()[:19])
    async with client(env, token["token"]) as itsm:
        assert (await itsm.get("/v1/rotations")).status_code == 200
        env.clock.advance(timedelta(days=7, seconds=1).total_seconds())
        expired = await itsm.get("/v1/rotations")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"] and token["token"] not in expired.text

    past = await env.api.post("/v1/tokens", json={"name": "late", "role": "viewer",
                                                  "expires_at": "2020-01-01T00:00:00Z"})  # fmt: skip
    assert past.status_code == 422 and past.json()["code"] == "expiry_in_past"
    naive = await env.api.post("/v1/tokens", json={"name": "naive", "role": "viewer",
                                                   "expires_at": "2030-01-01T00:00:00"})  # fmt: skip
    assert naive.status_code == 422


async def test_two_live_tokens_never_share_a_name_even_past_the_api(embedded):
    env = embedded
    first = await make_token(env, "ci-bot")
    again = await env.api.post("/v1/tokens", json={"name": "ci-bot", "role": "viewer"})
    assert again.status_code == 409 and again.json()["code"] == "token_name_taken"
    # The database itself refuses a second live row with the name (two replicas racing).
    async with env.runtime.uow() as uow:
        with pytest.raises(IntegrityError):
            await uow.session.execute(
                insert(api_tokens).values(
                    id=str(uuid.uuid4()), name="ci-bot", role="viewer", token_hash="0" * 64,
                    created_at=to_db(env.clock.now()), created_by="someone",
                )
            )  # fmt: skip
    # Once revoked, the name is free again.
    assert (await env.api.delete(f"/v1/tokens/{first['id']}")).status_code == 204
    await make_token(env, "ci-bot")


async def test_the_bootstrap_token_is_revoked_once_another_admin_exists(embedded):
    env = embedded
    refused = await env.api.delete("/v1/tokens/bootstrap-admin")
    assert refused.status_code == 409 and refused.json()["code"] == "last_admin_token"
    admin = await make_token(env, "second-admin", role="admin")
    async with client(env, admin["token"]) as second:
        assert (await second.delete("/v1/tokens/bootstrap-admin")).status_code == 204
        assert (await second.get("/v1/tokens")).status_code == 200
        listed = (await second.get("/v1/tokens")).json()["items"]
    assert ADMIN not in str(listed)
    async with client(env, ADMIN) as bootstrap:
        gone = await bootstrap.get("/v1/rotations")
    assert gone.status_code == 401


@pytest.fixture
async def clocked(embedded) -> AsyncIterator[tuple[Embedded, list[float]]]:
    wall = [1000.0]
    deps = embedded.runtime.app.state.deps
    deps.wall_clock = lambda: wall[0]
    yield embedded, wall


async def test_failed_authentications_are_limited_per_client_address(clocked):
    env, wall = clocked
    settings = env.runtime.settings
    limit = settings.auth_failure_limit
    viewer = await make_token(env, "viewer-bot")
    async with client(env, "crt_guessed-wrong", "10.6.6.6") as guesser:
        for _ in range(limit):
            assert (await guesser.get("/v1/rotations")).status_code == 401
        blocked = await guesser.get("/v1/rotations")
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_failed_authentications"
    window = settings.auth_failure_window_seconds
    assert int(blocked.headers["Retry-After"]) == int(window)
    # Even a right token from that address waits: the limit is on the address.
    async with client(env, viewer["token"], "10.6.6.6") as same_address:
        assert (await same_address.get("/v1/rotations")).status_code == 429
    # Another address is not affected.
    async with client(env, viewer["token"], "10.7.7.7") as elsewhere:
        assert (await elsewhere.get("/v1/rotations")).status_code == 200
    # Counted in the database (here the embedded mode's SQLite), where replicas would share it.
    assert await env.count(auth_failures) == limit
    wall[0] += window + 1
    async with client(env, viewer["token"], "10.6.6.6") as later:
        assert (await later.get("/v1/rotations")).status_code == 200
    # The next failure deletes what left the window.
    async with client(env, "crt_guessed-wrong", "10.6.6.6") as guesser:
        assert (await guesser.get("/v1/rotations")).status_code == 401
    assert await env.count(auth_failures) == 1


async def test_a_token_revoked_on_another_replica_stops_working_within_the_cache_time(clocked):
    env, wall = clocked
    ttl = env.runtime.settings.auth_cache_seconds
    assert ttl > 0
    viewer = await make_token(env, "poller")
    async with client(env, viewer["token"]) as poller:
        assert (await poller.get("/v1/rotations")).status_code == 200
        # Another replica revokes it: this one learns it from the database, not at once.
        async with env.runtime.uow() as uow:
            await uow.session.execute(
                update(api_tokens)
                .where(api_tokens.c.id == viewer["id"])
                .values(revoked_at=to_db(env.clock.now()))
            )
            await uow.commit()
        assert (await poller.get("/v1/rotations")).status_code == 200
        wall[0] += ttl
        refused = await poller.get("/v1/rotations")
    assert refused.status_code == 401 and refused.json()["code"] == "token_invalid"


async def test_a_token_revoked_on_this_replica_is_refused_at_once(clocked):
    env, _ = clocked
    viewer = await make_token(env, "poller")
    async with client(env, viewer["token"]) as poller:
        assert (await poller.get("/v1/rotations")).status_code == 200
        assert (await env.api.delete(f"/v1/tokens/{viewer['id']}")).status_code == 204
        assert (await poller.get("/v1/rotations")).status_code == 401


async def test_a_verified_token_still_stops_at_its_expiry(clocked):
    env, _ = clocked
    until = env.clock.now() + timedelta(hours=1)
    token = await make_token(env, "short-lived", expires_at=until.isoformat())
    async with client(env, token["token"]) as itsm:
        assert (await itsm.get("/v1/rotations")).status_code == 200
        env.clock.advance(timedelta(hours=1).total_seconds())  # the real clock has not moved
        assert (await itsm.get("/v1/rotations")).status_code == 401
