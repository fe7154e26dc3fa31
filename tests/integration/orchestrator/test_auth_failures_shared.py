"""Failed authentications counted in the database the orchestrator's replicas share: two API
replicas over one PostgreSQL schema give an address `limit` (+ one per other replica) guesses
per window, not `limit` on each; a request that authenticates fine costs no statement more."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared.runtime import ServiceRuntime
from orchestrator.adapters import auth_failure_rows
from orchestrator.adapters.auth_failure_rows import auth_failures
from tests.integration.orchestrator.harness import Embedded, orchestrator

pytestmark = pytest.mark.integration

GUESSER = "10.6.6.6"
WRONG = "crt_guessed-wrong"


@dataclass
class Replicas:
    env: Embedded
    runtimes: list[ServiceRuntime]
    wall: list[float]  # the real-time clock both replicas read (epoch seconds)

    def client(self, replica: int, token: str | None, address: str) -> httpx.AsyncClient:
        app = self.runtimes[replica].app
        assert app is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://orch", headers=headers,
        )  # fmt: skip

    async def get(self, replica: int, token: str | None, address: str) -> httpx.Response:
        async with self.client(replica, token, address) as api:
            return await api.get("/v1/rotations")

    async def rows(self) -> int:
        async with self.env.runtime.uow() as uow:
            count = select(func.count()).select_from(auth_failures)
            return int((await uow.session.execute(count)).scalar_one())


@pytest.fixture
async def replicas(embedded_pg: Embedded) -> AsyncIterator[Replicas]:
    """A second orchestrator replica over the first one's PostgreSQL schema."""
    env = embedded_pg
    second = orchestrator(
        env.settings, clock=env.clock, certificates=env.certificates, monitor=env.monitor,
        bus=env.bus,
    )  # fmt: skip
    await second.start(serve_http=False)
    wall = [1_800_000_000.0]
    both = [env.runtime, second]
    for runtime in both:
        assert runtime.app is not None
        runtime.app.state.deps.wall_clock = lambda: wall[0]
    try:
        yield Replicas(env, both, wall)
    finally:
        await second.stop()


async def viewer_token(env: Embedded) -> str:
    made = await env.api.post("/v1/tokens", json={"name": "viewer-bot", "role": "viewer"})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


async def test_failures_spread_over_two_replicas_are_limited_together(replicas):
    limit = replicas.env.runtime.settings.auth_failure_limit
    window = replicas.env.runtime.settings.auth_failure_window_seconds
    viewer = await viewer_token(replicas.env)
    refused_after = None
    for attempt in range(2 * limit):
        answer = await replicas.get(attempt % 2, WRONG, GUESSER)
        if answer.status_code == 429:
            refused_after = attempt
            break
        assert answer.status_code == 401 and answer.json()["code"] == "token_invalid"
        replicas.wall[0] += 1
    # Each replica alone would have let `limit` through: 2 x limit in all.
    assert refused_after is not None, f"{2 * limit} guesses over two replicas, none refused"
    assert limit <= refused_after <= limit + 1
    # Both replicas now refuse the address, a right token too, until fewer than `limit`
    # failures are left in the window: one a second, so once the first `limit` of the last
    # ones is `window` old. The replica that failed last knows it to the second; the other
    # learnt the count one failure earlier, so it may name a second less, never more.
    last = (refused_after - 1) % 2
    for replica in (last, 1 - last):
        for token in (WRONG, viewer):
            blocked = await replicas.get(replica, token, GUESSER)
            assert blocked.status_code == 429, (replica, blocked.text)
            assert blocked.json()["code"] == "too_many_failed_authentications"
            wait = int(blocked.headers["Retry-After"])
            if replica == last:
                assert wait == int(window) - limit
            else:
                assert int(window) - limit - 1 <= wait <= int(window) - limit
            assert WRONG not in blocked.text and viewer not in blocked.text
    # Another address is not affected, on either replica.
    for replica in (0, 1):
        assert (await replicas.get(replica, viewer, "10.7.7.7")).status_code == 200
    # Once the window has passed, the address may try again (and a wrong token is a 401 again).
    replicas.wall[0] += window
    assert (await replicas.get(0, viewer, GUESSER)).status_code == 200
    assert (await replicas.get(1, viewer, GUESSER)).status_code == 200
    assert (await replicas.get(1, WRONG, GUESSER)).status_code == 401


async def test_a_replica_that_learns_the_count_from_another_blocks_at_once(replicas):
    """Failures all on the first replica; the second's first failure learns the shared count."""
    limit = replicas.env.runtime.settings.auth_failure_limit
    for _ in range(limit):
        assert (await replicas.get(0, WRONG, GUESSER)).status_code == 401
    assert (await replicas.get(0, WRONG, GUESSER)).status_code == 429
    assert (await replicas.get(1, WRONG, GUESSER)).status_code == 401
    assert (await replicas.get(1, WRONG, GUESSER)).status_code == 429
    assert await replicas.rows() == limit + 1


# Set while a test's request runs: the replicas' background loops (timers, relay, leases)
# send statements of their own meanwhile, in tasks that do not carry it.
_probing: ContextVar[bool] = ContextVar("probing", default=False)


@dataclass
class Statements:
    replicas: Replicas
    sent: list[str]

    async def of(self, replica: int, token: str | None, address: str) -> tuple[int, list[str]]:
        """The status of one request, and the statements it sent."""
        self.sent.clear()
        probing = _probing.set(True)
        try:
            answer = await self.replicas.get(replica, token, address)
        finally:
            _probing.reset(probing)
        return answer.status_code, list(self.sent)


@pytest.fixture
def statements(replicas: Replicas) -> Iterator[Statements]:
    sent: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if _probing.get():
            sent.append(" ".join(statement.split()))

    engines: list[AsyncEngine] = [r.engine for r in replicas.runtimes]
    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
    yield Statements(replicas, sent)
    for engine in engines:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


async def test_a_good_token_costs_no_statement_more_and_a_refusal_none(replicas, statements):
    limit = replicas.env.runtime.settings.auth_failure_limit
    viewer = await viewer_token(replicas.env)
    # A poll on a replica that never saw a failure: its token looked up once, then verified.
    assert (await statements.of(1, viewer, "10.8.8.8"))[0] == 200
    status, clean = await statements.of(1, viewer, "10.8.8.8")
    assert status == 200 and clean, clean
    # An address with failures on the record (under the limit) that then authenticates fine
    # polls at the same cost, and its polls never touch the failures.
    for _ in range(limit - 1):
        assert (await statements.of(0, WRONG, GUESSER))[0] == 401
    assert (await statements.of(0, viewer, GUESSER))[0] == 200
    status, polled = await statements.of(0, viewer, GUESSER)
    assert status == 200 and len(polled) == len(clean), (polled, clean)
    assert not any("auth_failures" in s for s in polled), polled
    # A failure is one statement on the failures; a refused address costs none at all.
    status, failed = await statements.of(0, WRONG, GUESSER)
    assert status == 401 and len([s for s in failed if "auth_failures" in s]) == 1, failed
    assert await statements.of(0, WRONG, GUESSER) == (429, [])
    assert await statements.of(0, viewer, GUESSER) == (429, [])


async def test_the_failure_table_stays_bounded(replicas, monkeypatch):
    window = replicas.env.runtime.settings.auth_failure_window_seconds
    # A flood from many addresses keeps the newest failures only (a small bound for the test).
    monkeypatch.setattr(auth_failure_rows, "MAX_FAILURES", 5)
    for n in range(12):
        assert (await replicas.get(n % 2, WRONG, f"10.9.0.{n}")).status_code == 401
    assert await replicas.rows() == 5
    # What has left the window is deleted by the next failure, from any address.
    replicas.wall[0] += window
    assert (await replicas.get(1, WRONG, "10.9.1.1")).status_code == 401
    assert await replicas.rows() == 1


async def test_a_database_hiccup_on_the_failure_write_still_answers_401_and_counts_here(
    replicas, caplog
):
    limit = replicas.env.runtime.settings.auth_failure_limit
    async with replicas.env.runtime.engine.begin() as conn:
        await conn.execute(text("DROP TABLE auth_failures"))
    caplog.set_level(logging.WARNING)
    for _ in range(limit):
        answer = await replicas.get(0, WRONG, GUESSER)
        assert answer.status_code == 401 and answer.json()["code"] == "token_invalid"
    # This replica still counts on its own.
    assert (await replicas.get(0, WRONG, GUESSER)).status_code == 429
    warned = [r.getMessage() for r in caplog.records if "auth" in r.getMessage().lower()]
    assert warned and GUESSER in warned[0], caplog.text
    assert WRONG not in caplog.text


async def test_failures_at_the_same_moment_on_both_replicas_are_all_answered(replicas, caplog):
    """Replicas recording and sweeping together never wait on (or deadlock over) each other's
    rows: every guess is answered 401 or 429, none 500."""
    window = replicas.env.runtime.settings.auth_failure_window_seconds
    caplog.set_level(logging.WARNING)
    for n in range(20):  # rows for the sweep to find once the window has passed
        assert (await replicas.get(n % 2, WRONG, f"10.9.0.{n}")).status_code == 401
    replicas.wall[0] += window
    answers = await asyncio.gather(
        *(replicas.get(n % 2, WRONG, f"10.9.{n % 3}.1") for n in range(30))
    )
    assert {a.status_code for a in answers} <= {401, 429}, [a.text for a in answers]
    assert 401 in {a.status_code for a in answers}
    assert "not recorded" not in caplog.text  # every one was counted where both replicas see it
    assert await replicas.rows() <= 30
