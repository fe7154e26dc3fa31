"""The certificates service in this process, and an orchestrator stand-in collecting events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from certificates.entrypoints.api import TOKEN_HEADER
from certrotate_shared.envelope import Envelope, Event, Message, registered_messages
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.messages.replication import SiteInspected
from certrotate_shared.runtime import ServiceRuntime
from tests.support.probe import Probe
from tests.support.twin_targets import twin_site_target

TOKEN = "internal-token-for-tests-0123456789"


class EventProbe(Probe):
    """tests/support/probe.py's orchestrator stand-in, collecting every event type."""

    def __init__(self, bus: Any = None, **settings: Any) -> None:
        super().__init__(bus, **settings)
        collect = self.runtime.spec.handlers[SiteInspected]
        events = [cls for cls in registered_messages().values() if issubclass(cls, Event)]
        self.runtime.spec.handlers = dict.fromkeys(events, collect)

    async def emit(self, message: Message, saga_id: str) -> Envelope:
        return (await self.send(message, saga_id=saga_id))[0]

    async def wait_for(
        self, kind: str, *, where: Callable[[Envelope], bool] = lambda e: True, timeout: float = 30
    ) -> Envelope:
        async def found() -> Envelope:
            while True:
                for envelope in self.replies:
                    if envelope.type == kind and where(envelope):
                        return envelope
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(found(), timeout)

    def of(self, kind: str) -> list[Envelope]:
        return [e for e in self.replies if e.type == kind]


def api_client(runtime: ServiceRuntime) -> httpx.AsyncClient:
    """The service's HTTP API in process, with the internal token."""
    assert runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app),
        base_url="http://certificates",
        headers={TOKEN_HEADER: TOKEN},
    )


def twin_site(topology: dict[str, Any], name: str) -> SiteTarget:
    """What the orchestrator's inventory sends a worker for one twin site."""
    return twin_site_target(topology, name)
