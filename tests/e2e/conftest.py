"""Fixtures of the end-to-end tests: a world per test (twin process + four service processes
over the real Kafka and PostgreSQL), torn down whatever happens."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from certrotate.distributed import Supervisor
from tests.e2e.secret_scan import SecretScan
from tests.e2e.support import E2E, LOG_ROOT, TwinProcess, delete_topics, distributed_config

MakeWorld = Callable[..., Awaitable[E2E]]


@pytest.fixture
async def private_topics(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[str]:
    """The test's own Kafka topics (its prefix), deleted afterwards: a long-lived broker that
    keeps every test's topics runs out of file handles (the shared one died of 'Too many open
    files' at ~20,000 partition directories)."""
    yield topic_prefix
    await delete_topics(kafka_bootstrap, topic_prefix)


@pytest.fixture
async def secret_scan(
    capfd: pytest.CaptureFixture[str], kafka_bootstrap: str, private_topics: str
) -> AsyncIterator[SecretScan]:
    """Fails the test when a secret it used shows up in a log line, message or event it produced
    (issue 11). Fixtures that start things register their secrets and sources here."""
    scan = SecretScan()
    yield scan
    out, err = capfd.readouterr()
    # Still shown in the report of a failing test.
    print(out, end="")
    print(err, end="", file=sys.stderr)
    scan.text("this process's stdout", out)
    scan.text("this process's stderr (in-process services' logs)", err)
    if scan.kafka is not None:
        await scan.kafka_topics(*scan.kafka)
    findings = scan.findings()
    print(scan.summary(), file=sys.stderr)
    if findings:
        pytest.fail(
            f"{len(findings)} secret(s) leaked (secret, encoding, where):\n"
            + "\n".join(f"  {finding}" for finding in findings[:50]),
            pytrace=False,
        )


@pytest.fixture
async def world(
    request: pytest.FixtureRequest,
    pg_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    pg_schemas: list[str],
    secret_scan: SecretScan,
) -> AsyncIterator[MakeWorld]:
    """`await world(scenario_dict, settings=...)` starts the twin and the services."""
    made: list[E2E] = []
    twins: list[TwinProcess] = []

    async def make(
        scenario_dict: dict[str, Any], *, settings: dict[str, dict[str, Any]] | None = None
    ) -> E2E:
        workdir = LOG_ROOT / f"{request.node.name}-{topic_prefix}"
        print(f"\nlogs: {workdir}", flush=True)
        twin = TwinProcess(scenario_dict, workdir)
        twins.append(twin)
        secret_scan.secret("SEPM account password", scenario_dict.get("admin", {}).get("password"))
        secret_scan.log_dir(workdir)
        await twin.start()
        assert twin.http is not None
        secret_scan.watch_client(twin.http, "twin control", search_answers=False)
        config = distributed_config(
            pg_url=pg_url,
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            clock=await twin.clock_sync(),
            log_dir=workdir,
            settings=settings,
        )
        pg_schemas.extend(config.schemas())
        secret_scan.stack_secrets(config.master_key, config.internal_token, config.admin_token)
        secret_scan.watch_kafka(kafka_bootstrap, topic_prefix)
        supervisor = Supervisor(config)
        await supervisor.start()
        api = httpx.AsyncClient(
            base_url=supervisor.api_url,
            headers={"Authorization": f"Bearer {config.admin_token}"},
            timeout=30,
        )
        secret_scan.watch_client(api)
        e2e = E2E(twin=twin, supervisor=supervisor, api=api, admin_token=config.admin_token)
        made.append(e2e)
        return e2e

    try:
        yield make
    finally:
        for e2e in made:
            with contextlib.suppress(httpx.HTTPError):
                await secret_scan.rotation_events(e2e.api)
            await e2e.api.aclose()
            await e2e.supervisor.stop()
        for twin in twins:
            await twin.stop()
