"""The orchestrator embedded (SQLite, in-process transport) behind a real HTTP listener, in a
thread of its own: what a generated client or a fuzzer talks to. Its peers (the certificates and
client-monitor services) are the integration tests' in-process stand-ins."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from certrotate_shared.clock import ManualClock
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from tests.integration.orchestrator.harness import fake_certificates_app
from tests.integration.orchestrator.support import ADMIN, INTERNAL, fake_monitor_app


@contextmanager
def live_orchestrator(data_dir: Path, master_key: str) -> Iterator[str]:
    """Yield the base URL of a running orchestrator; ADMIN is its admin token."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    url: list[str] = []
    failure: list[BaseException] = []

    certificates = fake_certificates_app()

    @certificates.post("/internal/v1/retention/purge")
    async def purge() -> dict[str, str]:  # what deleting an uploaded bundle asks of the store
        return {}

    async def serve() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        runtime = build_runtime(
            Settings(
                database_url=f"sqlite+aiosqlite:///{data_dir}/orchestrator.db",
                transport="local",
                local_log_path=str(data_dir / "bus.db"),
                vault_url=f"sqlite+aiosqlite:///{data_dir}/vault.db",
                master_key=master_key,
                admin_token=ADMIN,
                internal_token=INTERNAL,
                max_body_bytes=64 * 1024,
                rehearsal=True,
                callback_allowed_networks=["127.0.0.0/8"],
            ),
            clock=ManualClock(),
            certificates_client=httpx.AsyncClient(
                transport=httpx.ASGITransport(app=certificates),
                base_url="http://certificates",
            ),
            client_monitor_client=httpx.AsyncClient(
                transport=httpx.ASGITransport(app=fake_monitor_app()), base_url="http://monitor"
            ),
        )
        try:
            await runtime.start()
            assert runtime.http_url is not None
            url.append(runtime.http_url)
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            raise
        ready.set()
        try:
            await stop.wait()
        finally:
            await runtime.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(timeout=60)
    if failure or not url:
        raise RuntimeError("the orchestrator did not start") from (failure[0] if failure else None)
    try:
        yield url[0]
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
