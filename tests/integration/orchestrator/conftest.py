from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from certrotate_shared.clock import ManualClock
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.transport.local import LocalTransport
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from tests.integration.orchestrator.support import (
    ADMIN,
    INTERNAL,
    StandInWorker,
    fake_certificates_app,
    fake_monitor_app,
    server_body,
    site_body,
)


@dataclass
class Embedded:
    runtime: ServiceRuntime
    api: httpx.AsyncClient
    clock: ManualClock
    certificates: FastAPI
    worker: StandInWorker
    settings: dict[str, Any]
    monitor: FastAPI | None = None  # the stand-in client-monitor (its at-risk rows)

    def client(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert self.runtime.app is not None
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.runtime.app), base_url="http://orch",
            headers=headers,
        )  # fmt: skip


@pytest.fixture
async def embedded(tmp_path, master_key) -> AsyncIterator[Embedded]:
    """The orchestrator on SQLite and the in-process transport, with a stand-in worker."""
    async for env in _embedded(tmp_path, master_key, {}):
        yield env


@pytest.fixture
async def embedded_pg(tmp_path, master_key, pg_url, pg_schemas) -> AsyncIterator[Embedded]:
    """The same on PostgreSQL (a schema of its own): what a distributed deployment reads."""
    schema = f"orch_{uuid.uuid4().hex[:8]}"
    pg_schemas.extend([schema, f"{schema}_vault"])
    database = {"database_url": pg_url, "database_schema": schema,
                "vault_url": pg_url, "vault_schema": f"{schema}_vault"}  # fmt: skip
    async for env in _embedded(tmp_path, master_key, database):
        yield env


async def _embedded(
    tmp_path: Path, master_key: str, overrides: dict[str, Any]
) -> AsyncIterator[Embedded]:
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
        "transport": "local",
        "local_log_path": str(tmp_path / "bus.db"),
        "vault_url": f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        "master_key": master_key,
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "timer_poll_seconds": 0.05,
        "max_body_bytes": 64 * 1024,
        "rehearsal": True,  # the stand-in sites use the twin driver
        **overrides,
    }
    bus = LocalTransport(str(tmp_path / "bus.db"))
    certificates = fake_certificates_app()
    monitor = fake_monitor_app()
    clock = ManualClock()
    runtime = build_runtime(
        Settings(**settings),
        transport=bus,
        clock=clock,
        certificates_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=certificates), base_url="http://certificates"
        ),
        client_monitor_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=monitor), base_url="http://monitor"
        ),
    )
    worker = StandInWorker(
        bus=bus,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/standin.db",
        transport="local",
        local_log_path=str(tmp_path / "bus.db"),
        master_key=master_key,
    )
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    env = Embedded(runtime, None, clock, certificates, worker, settings, monitor)  # type: ignore[arg-type]
    env.api = env.client(ADMIN)
    await env.api.post("/v1/sites", json=site_body(partners=["site-b"]))
    for name in ("sepm-a1", "sepm-a2"):
        await env.api.post("/v1/servers", json=server_body(name))
    yield env
    await env.api.aclose()
    await worker.runtime.stop()
    await runtime.stop()
