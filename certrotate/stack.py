"""The four services in one process (embedded mode): SQLite files, the durable in-process log,
and in-process HTTP between the orchestrator and the services it queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from certrotate.data_dir import MasterKeyMismatchError, make_private_dir, stack_secrets
from certrotate_shared.internal_api import TOKEN_HEADER
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.transport.local import LocalTransport

__all__ = [
    "ClockSync",
    "EmbeddedStack",
    "MasterKeyMismatchError",
    "stack_secrets",
    "start_embedded",
]


@dataclass
class ClockSync:
    """Accelerated time shared with a twin: at real instant `real_ms` it was `sim_ms`."""

    speed: float
    real_ms: int
    sim_ms: int


@dataclass
class EmbeddedStack:
    data_dir: Path
    runtimes: dict[str, ServiceRuntime]
    transport: LocalTransport
    admin_token: str = field(repr=False)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        url = self.runtimes["orchestrator"].http_url
        assert url is not None
        return url

    async def stop(self) -> None:
        # The orchestrator first: it is the one that queries the others.
        for name in ("orchestrator", "client-monitor", "certificates", "replication"):
            await self.runtimes[name].stop()
        for client in self.clients:
            await client.aclose()
        await self.transport.stop()


def _in_process_client(runtime: ServiceRuntime, name: str, token: str) -> httpx.AsyncClient:
    assert runtime.app is not None, f"{name} has no HTTP API"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app),
        base_url=f"http://{name}.embedded",
        headers={TOKEN_HEADER: token},
    )


async def start_embedded(
    data_dir: Path,
    *,
    api_host: str = "127.0.0.1",
    api_port: int = 8080,
    clock: ClockSync | None = None,
    log_level: str = "WARNING",
    service_settings: dict[str, dict[str, Any]] | None = None,
    **orchestrator_settings: Any,
) -> EmbeddedStack:
    """Start every service in this event loop; only the orchestrator's API listens.

    `service_settings`: per worker service ("replication", "certificates", "client-monitor"),
    settings to use instead of the defaults (tests and rehearsals tune loop intervals)."""
    from certificates.bootstrap import build_runtime as certificates_runtime
    from certificates.settings import Settings as CertificatesSettings
    from client_monitor.bootstrap import build_runtime as monitor_runtime
    from client_monitor.settings import Settings as MonitorSettings
    from orchestrator.bootstrap import build_runtime as orchestrator_runtime
    from orchestrator.settings import Settings as OrchestratorSettings
    from replication.bootstrap import build_runtime as replication_runtime
    from replication.settings import Settings as ReplicationSettings

    if clock is not None:  # on the twin's clock: a rehearsal, sites drive the twin
        orchestrator_settings.setdefault("rehearsal", True)
    make_private_dir(data_dir)
    keys = stack_secrets(data_dir)
    transport = LocalTransport(str(data_dir / "transport.db"))
    common: dict[str, Any] = {
        "transport": "local",
        "local_log_path": str(data_dir / "transport.db"),
        "vault_url": f"sqlite+aiosqlite:///{data_dir / 'vault.db'}",
        "master_key": keys["master_key"],
        "log_level": log_level,
    }
    if clock is not None:
        common |= {
            "clock_speed": clock.speed,
            "clock_real_origin_ms": clock.real_ms,
            "clock_sim_origin_ms": clock.sim_ms,
        }

    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{data_dir / (name + '.db')}"

    extra = service_settings or {}
    runtimes: dict[str, ServiceRuntime] = {}
    stack = EmbeddedStack(data_dir, runtimes, transport, admin_token=keys["admin_token"])
    try:
        runtimes["replication"] = replication_runtime(
            ReplicationSettings(
                database_url=db("replication"),
                internal_token=keys["internal_token"],
                **(common | extra.get("replication", {})),
            ),
            transport=transport,
        )
        runtimes["certificates"] = certificates_runtime(
            CertificatesSettings(
                database_url=db("certificates"),
                internal_token=keys["internal_token"],
                **(common | extra.get("certificates", {})),
            ),
            transport=transport,
        )
        runtimes["client-monitor"] = monitor_runtime(
            MonitorSettings(
                database_url=db("client_monitor"),
                internal_token=keys["internal_token"],
                **(common | extra.get("client-monitor", {})),
            ),
            transport=transport,
        )
        for name in ("replication", "certificates", "client-monitor"):
            await runtimes[name].start(serve_http=False)
        certificates = _in_process_client(
            runtimes["certificates"], "certificates", keys["internal_token"]
        )
        monitor = _in_process_client(
            runtimes["client-monitor"], "client-monitor", keys["internal_token"]
        )
        stack.clients += [certificates, monitor]
        runtimes["orchestrator"] = orchestrator_runtime(
            OrchestratorSettings(
                database_url=db("orchestrator"),
                internal_token=keys["internal_token"],
                admin_token=keys["admin_token"],
                http_host=api_host,
                http_port=api_port,
                **(common | orchestrator_settings),
            ),
            transport=transport,
            certificates_client=certificates,
            client_monitor_client=monitor,
        )
        await runtimes["orchestrator"].start()
    except BaseException:
        for runtime in runtimes.values():
            if hasattr(runtime, "engine"):
                await runtime.stop()
        raise
    return stack


async def run_embedded(data_dir: Path, *, api_port: int, clock: ClockSync | None = None) -> None:
    """`certrotate up --mode embedded`: serve until SIGINT/SIGTERM, then stop cleanly."""
    import asyncio
    import signal

    from certrotate_shared.logs import configure_logging
    from certrotate_shared.tracing import configure_tracing, shutdown_tracing

    stack = await start_embedded(data_dir, api_port=api_port, clock=clock, log_level="INFO")
    settings = stack.runtimes["orchestrator"].settings
    configure_logging("embedded", settings.log_level, settings.log_format)
    configure_tracing("embedded", settings.otlp_endpoint)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"certrotate (embedded) serving {stack.api_url}  (OpenAPI: {stack.api_url}/docs; "
        f"dashboard: {stack.api_url}/dashboard/; admin token in {data_dir / 'secrets.json'})",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await stack.stop()
        shutdown_tracing()
