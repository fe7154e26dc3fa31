"""The client-monitor in this process over real PostgreSQL and Kafka, against a real twin on
loopback (HTTPS to its SEPM API), with an orchestrator stand-in collecting the events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from certrotate_shared import site_directory
from certrotate_shared.consumer import Context
from certrotate_shared.envelope import Envelope, Event, Message
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    PolicyPropagated,
    PropagationProgressed,
    PropagationStalled,
    PropagationWatchFailed,
)
from certrotate_shared.messages.common import GroupTarget, SiteTarget
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.sepm.client import connect_site
from certrotate_shared.sepm.domains import site_groups
from certrotate_shared.sepm.groups import policy_owners
from certrotate_shared.settings import ServiceSettings, SettingsConfigDict
from certrotate_shared.topics import events_topic
from certrotate_shared.vault import Vault
from client_monitor.bootstrap import build_runtime
from client_monitor.settings import Settings
from sepm_twin import Twin
from tests.support.twin_targets import twin_site_target

ADMIN = {"username": "admin", "password": "admin", "domain": ""}
INTERNAL_TOKEN = "internal-token-for-tests-0123456789"
# What the orchestrator sends to the client-monitor's internal API.
API_HEADERS = {"X-Certrotate-Internal-Token": INTERNAL_TOKEN}


def scenario(*groups: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": 5,
        "clock": {"speed": 0},  # the tests move time
        "sites": [
            {
                "name": "site-a",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-a1"}],
                "groups": list(groups),
            }
        ],
    }


class TwinClock:
    """The service's clock, reading the twin's simulated time (tests advance it by HTTP)."""

    def __init__(self, twin: Twin) -> None:
        self._twin = twin

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._twin.world.clock.now_ms() / 1000, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(seconds, 0.0), 0.2))


class EventProbe:
    """The orchestrator's side: sends commands, collects the client-monitor's events."""

    def __init__(self, **settings: Any) -> None:
        self.events: list[Envelope] = []
        self._arrived = asyncio.Event()

        async def collect(message: Message, ctx: Context) -> Event | None:
            self.events.append(ctx.envelope)
            self._arrived.set()
            return None

        kinds = (
            PropagationProgressed,
            PolicyPropagated,
            PropagationStalled,
            PropagationWatchFailed,
        )
        self.runtime = ServiceRuntime(
            _ProbeSettings(**settings),
            ServiceSpec(
                name="orchestrator",
                handlers=dict.fromkeys(kinds, collect),
                topics=lambda prefix: [events_topic(prefix)],
            ),
        )

    async def send(self, message: Message, saga_id: str) -> Envelope:
        async with self.runtime.uow() as uow:
            sent = uow.emit(message, saga_id=saga_id)
            await uow.commit()
        return sent

    async def wait_for(
        self, kind: str, *, where: Callable[[Envelope], bool] = lambda e: True, timeout: float = 30
    ) -> Envelope:
        async def found() -> Envelope:
            while True:
                for envelope in self.events:
                    if envelope.type == kind and where(envelope):
                        return envelope
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(found(), timeout)

    def of(self, kind: str) -> list[Envelope]:
        return [e for e in self.events if e.type == kind]


class _ProbeSettings(ServiceSettings):
    service = "orchestrator"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_CM_PROBE_")


@dataclass
class Stack:
    twin: Twin
    http: httpx.AsyncClient  # the twin's control plane
    site: SiteTarget
    vault: Vault
    probe: EventProbe
    settings: Settings
    runtimes: list[ServiceRuntime]

    async def start_monitor(self) -> ServiceRuntime:
        runtime = build_runtime(self.settings, clock=TwinClock(self.twin), vault=self.vault)
        await runtime.start()
        self.runtimes.append(runtime)
        return runtime

    async def advance(self, seconds: float) -> None:
        response = await self.http.post("/twin/v1/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    async def twin_now(self) -> datetime:
        body = (await self.http.get("/twin/v1/clock")).json()
        return datetime.fromtimestamp(body["now_ms"] / 1000, UTC)

    async def disable_verification(self) -> list[GroupTarget]:
        """Step 2 through the real connector: every owning group of every domain; then every
        group's target, an inheriting group's being its owner's new serial."""
        sepm = await connect_site(self.site, self.vault)
        off = {
            "configuration": {
                "general_settings": {"security_settings": {"secure_communications": False}}
            }
        }
        try:
            for group in await site_groups(sepm):
                if group.owns_policy:
                    for location in await sepm.group_locations(group.id, domain_id=group.domain_id):
                        await sepm.patch_location_settings(group.id, location.id, off)
            groups = await site_groups(sepm)
            owners = policy_owners(groups)
            return [
                GroupTarget(
                    group_id=g.id,
                    full_path_name=g.full_path_name,
                    target_serial=owners[g.id].policy_serial,
                )
                for g in groups
            ]
        finally:
            await sepm.close()

    async def watch(
        self, groups: list[GroupTarget], *, deadline_in: timedelta, **terms: Any
    ) -> tuple[str, str, Envelope]:
        saga_id, watch_id = str(uuid.uuid4()), f"w-{uuid.uuid4().hex[:8]}"
        command = AwaitPolicyPropagation(
            idempotency_key=f"{saga_id}:await:1",
            site=self.site,
            watch_id=watch_id,
            groups=groups,
            deadline=await self.twin_now() + deadline_in,
            **terms,
        )
        sent = await self.probe.send(command, saga_id)
        return saga_id, watch_id, sent


@pytest.fixture
async def make_stack(
    pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas
) -> AsyncIterator[Callable[..., Any]]:
    stacks: list[Stack] = []

    async def make(twin_scenario: dict[str, Any], **settings: Any) -> Stack:
        suffix = uuid.uuid4().hex[:8]
        schemas = {k: f"{k}_{suffix}" for k in ("cm", "probe", "vault")}
        pg_schemas.extend(schemas.values())
        twin = await Twin.start(twin_scenario)
        topology = twin.topology()
        site_view = topology["sites"][0]
        vault = Vault(pg_url, _key_bytes(master_key), schema=schemas["vault"])
        await vault.start()
        await vault.put("sepm/site-a", "sepm-account", ADMIN)
        site = twin_site_target(topology, site_view["name"], credential_ref="sepm/site-a")
        await site_directory.publish(vault, site, revision=1)  # as the orchestrator does
        common = {
            "database_url": pg_url,
            "transport": "kafka",
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "master_key": master_key,
        }
        probe = EventProbe(database_schema=schemas["probe"], **common)
        await probe.runtime.start(serve_http=False)
        monitor_settings = Settings(
            database_schema=schemas["cm"],
            internal_token=INTERNAL_TOKEN,
            scan_interval_s=0.2,
            min_scan_interval_real_s=0.2,
            progress_min_interval_real_s=0.0,
            # Paced, but well above what these small fleets need: the tests stay fast.
            sepm_calls_per_minute=1200.0,
            sepm_call_burst=20.0,
            **{**common, **settings},
        )
        stack = Stack(
            twin=twin,
            http=httpx.AsyncClient(base_url=twin.base_url, timeout=30),
            site=site,
            vault=vault,
            probe=probe,
            settings=monitor_settings,
            runtimes=[],
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        for runtime in stack.runtimes:
            await runtime.stop()
        await stack.probe.runtime.stop()
        await stack.http.aclose()
        await stack.vault.stop()
        await stack.twin.stop()


def _key_bytes(master_key: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(master_key.encode())
