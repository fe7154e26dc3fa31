"""An in-test stand-in for the orchestrator side: emits commands, collects reply events."""

from __future__ import annotations

import asyncio
from typing import Any

from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Envelope, Event, Message
from certrotate_shared.messages.dead_letters import MessageDeadLettered
from certrotate_shared.messages.replication import SiteInspected, SiteInspectionFailed
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.settings import ServiceSettings, SettingsConfigDict
from certrotate_shared.topics import events_topic
from certrotate_shared.transport.base import Transport


class ProbeSettings(ServiceSettings):
    service = "orchestrator"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_PROBE_")


class Probe:
    def __init__(self, bus: Transport | None = None, **settings: Any) -> None:
        self.replies: list[Envelope] = []
        self._arrived = asyncio.Event()

        async def collect(message: Message, ctx: Context) -> Event | None:
            self.replies.append(ctx.envelope)
            self._arrived.set()
            return None

        self.runtime = ServiceRuntime(
            ProbeSettings(**settings),
            ServiceSpec(
                name="orchestrator",
                handlers={
                    SiteInspected: collect,
                    SiteInspectionFailed: collect,
                    MessageDeadLettered: collect,
                },
                topics=lambda prefix: [events_topic(prefix)],
            ),
            transport=bus,
        )

    async def __aenter__(self) -> Probe:
        await self.runtime.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    async def send(self, *messages: Message, saga_id: str) -> list[Envelope]:
        async with self.runtime.uow() as uow:
            sent = [uow.emit(m, saga_id=saga_id) for m in messages]
            await uow.commit()
        return sent

    async def wait_replies(self, count: int, timeout: float = 60.0) -> list[Envelope]:
        async def enough() -> None:
            while len(self.replies) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(enough(), timeout)
        return self.replies
