"""The orchestrator (SQLite, in-process bus, a stand-in worker: webhook_support.started_hooks)
with the real certificates service in this process instead of its stand-in: its store, its
pre-flight, its TTL purge, on the orchestrator's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from certificates.bootstrap import build_runtime as build_certificates
from certificates.settings import Settings as CertificatesSettings
from certrotate_shared.clock import ManualClock
from certrotate_shared.runtime import ServiceRuntime
from tests.integration.orchestrator.support import INTERNAL, server_body, site_body
from tests.integration.orchestrator.webhook_support import Hooks, started_hooks


async def with_real_certificates(
    tmp_path: Path, master_key: str, *, clock: ManualClock, sites: list[str], **overrides: Any
) -> AsyncIterator[tuple[Hooks, ServiceRuntime]]:
    """Both services started, each of `sites` registered with one server `<site>-s1` (the
    stand-in's site-a comes with the orchestrator); stopped after the caller's last use."""
    certificates = build_certificates(
        CertificatesSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/certificates.db",
            vault_url=f"sqlite+aiosqlite:///{tmp_path}/cert-vault.db",
            transport="local",
            local_log_path=str(tmp_path / "certificates-bus.db"),
            master_key=master_key,
            internal_token=INTERNAL,
        ),
        clock=clock,
    )
    await certificates.start(serve_http=False)
    try:
        async for hooks in started_hooks(
            tmp_path, master_key, certificates=certificates.app, clock=clock, **overrides
        ):
            for site in sites:
                await hooks.api.post("/v1/sites", json=site_body(site))
                await hooks.api.post("/v1/servers", json=server_body(f"{site}-s1", site))
            yield hooks, certificates
    finally:
        await certificates.stop()
