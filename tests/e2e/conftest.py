"""Fixtures of the end-to-end tests: a world per test (twin process + four service processes
over the real Kafka and PostgreSQL), torn down whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from certrotate.distributed import Supervisor
from tests.e2e.support import E2E, LOG_ROOT, TwinProcess, distributed_config

MakeWorld = Callable[..., Awaitable[E2E]]


@pytest.fixture
async def world(
    request: pytest.FixtureRequest,
    pg_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    pg_schemas: list[str],
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
        await twin.start()
        config = distributed_config(
            pg_url=pg_url,
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            clock=await twin.clock_sync(),
            log_dir=workdir,
            settings=settings,
        )
        pg_schemas.extend(config.schemas())
        supervisor = Supervisor(config)
        await supervisor.start()
        api = httpx.AsyncClient(
            base_url=supervisor.api_url,
            headers={"Authorization": f"Bearer {config.admin_token}"},
            timeout=30,
        )
        e2e = E2E(twin=twin, supervisor=supervisor, api=api, admin_token=config.admin_token)
        made.append(e2e)
        return e2e

    try:
        yield make
    finally:
        for e2e in made:
            await e2e.api.aclose()
            await e2e.supervisor.stop()
        for twin in twins:
            await twin.stop()
