"""The replication service over real Kafka and PostgreSQL, against a real twin, with the probe
standing in for the orchestrator."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from certrotate_shared import site_directory
from certrotate_shared.envelope import Envelope, Event, registered_messages
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.vault import Vault
from replication.bootstrap import build_runtime
from replication.settings import Settings
from sepm_twin import Twin
from tests.support.probe import Probe
from tests.support.twin_targets import twin_site_target

CREDENTIAL_REF = "sepm/site-a"


def scenario(speed: float) -> dict[str, Any]:
    return {
        "seed": 3,
        "clock": {"speed": speed},
        "replication": {"interval_s": 86_400, "duration_s": 60},
        "sites": [
            {
                "name": "site-a",
                "servers": [{"name": "sepm-a1"}],
                "replication_partners": ["site-b", "site-c"],
                "groups": [{"name": "My Company\\Default", "clients": 20}],
            },
            {"name": "site-b", "version": "14.2.1000", "servers": [{"name": "sepm-b1"}]},
            {"name": "site-c", "servers": [{"name": "sepm-c1"}]},
        ],
    }


def widen(probe: Probe) -> Probe:
    """Let the probe collect every event, not only SiteInspected."""
    collect = next(iter(probe.runtime.spec.handlers.values()))
    probe.runtime.spec.handlers = {
        cls: collect for cls in registered_messages().values() if issubclass(cls, Event)
    }
    return probe


@dataclass
class Stack:
    twin: Twin
    http: httpx.AsyncClient
    probe: Probe
    settings: Settings
    site: SiteTarget
    runtimes: list[ServiceRuntime]

    async def start_service(self, **overrides: Any) -> ServiceRuntime:
        runtime = build_runtime(self.settings.model_copy(update=overrides))
        await runtime.start(serve_http=False)
        self.runtimes.append(runtime)
        return runtime

    async def stop_service(self, runtime: ServiceRuntime) -> None:
        await runtime.stop()
        self.runtimes.remove(runtime)

    async def send(self, *messages: Any, saga_id: str) -> list[Envelope]:
        return await self.probe.send(*messages, saga_id=saga_id)

    async def reply(self, to: Envelope, timeout: float = 30.0) -> Envelope:
        """The first event caused by this command envelope."""
        import asyncio

        async def arrived() -> Envelope:
            while True:
                for reply in self.probe.replies:
                    if reply.causation_id == str(to.message_id):
                        return reply
                self.probe._arrived.clear()
                await self.probe._arrived.wait()

        return await asyncio.wait_for(arrived(), timeout)

    def replies_to(self, to: Envelope) -> list[Envelope]:
        return [r for r in self.probe.replies if r.causation_id == str(to.message_id)]

    async def partners(self, site: str = "site-a") -> dict[str, dict[str, Any]]:
        response = await self.http.get(
            f"/sites/{site}/sepm/api/v1/replication/status", headers=await self._auth(site)
        )
        rows = response.json()["replicationStatus"]["replicationPartnerStatusList"]
        return {row["name"]: row for row in rows}

    async def _auth(self, site: str) -> dict[str, str]:
        response = await self.http.post(
            f"/sites/{site}/sepm/api/v1/identity/authenticate",
            json={"username": "admin", "password": "admin", "domain": ""},
        )
        return {"Authorization": f"Bearer {response.json()['token']}"}

    async def operations(self, operation: str) -> list[dict[str, Any]]:
        entries = (await self.http.get("/twin/v1/operations")).json()
        return [e for e in entries if e["operation"] == operation]

    async def fault(self, **spec: Any) -> None:
        response = await self.http.post("/twin/v1/faults", json=spec)
        assert response.status_code == 201, response.text

    async def clock_speed(self, speed: float) -> None:
        response = await self.http.post("/twin/v1/clock/speed", json={"speed": speed})
        assert response.status_code == 200, response.text


def site_target(twin: Twin, **overrides: Any) -> SiteTarget:
    target = twin_site_target(twin.topology(), "site-a", credential_ref=CREDENTIAL_REF)
    return target.model_copy(update=overrides)


@pytest.fixture
def twin_speed() -> float:
    return 600.0


@pytest.fixture
async def stack(
    pg_url, kafka_bootstrap, topic_prefix, master_key, pg_schemas, tmp_path, twin_speed
) -> AsyncIterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    schema, probe_schema = f"replication_{suffix}", f"probe_{suffix}"
    pg_schemas.extend([schema, probe_schema])
    vault_url = f"sqlite+aiosqlite:///{tmp_path}/vault.db"
    vault = Vault(vault_url, base64.urlsafe_b64decode(master_key.encode()))
    await vault.start()
    await vault.put(
        CREDENTIAL_REF, "sepm", {"username": "admin", "password": "admin", "domain": ""}
    )
    # site-c's account is refused by SEPM; site-b is published at an address nobody answers.
    await vault.put("sepm/site-c", "sepm", {"username": "admin", "password": "nope", "domain": ""})
    await vault.put("sepm/site-b", "sepm", {"username": "admin", "password": "admin", "domain": ""})
    twin = await Twin.start(scenario(twin_speed))
    topology = twin.topology()
    for name in ("site-a", "site-c"):
        await site_directory.publish(vault, twin_site_target(topology, name), revision=1)
    unreachable = twin_site_target(topology, "site-b").model_copy(
        update={"api_url": "https://127.0.0.1:1/sepm/api/v1"}
    )
    await site_directory.publish(vault, unreachable, revision=1)
    await vault.stop()
    http = httpx.AsyncClient(base_url=twin.base_url, timeout=30)
    common = {
        "transport": "kafka",
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "master_key": master_key,
        "database_url": pg_url,
    }
    settings = Settings(
        **common,
        database_schema=schema,
        internal_token="internal-token-for-tests-0123456789",
        vault_url=vault_url,
        restore_poll_initial_s=0.1,
        restore_poll_max_s=0.5,
        restore_timeout_s=60,
        work_poll_s=0.1,
    )
    probe = widen(Probe(**common, database_schema=probe_schema))
    stack = Stack(twin, http, probe, settings, site_target(twin), [])
    await probe.__aenter__()
    try:
        yield stack
    finally:
        for runtime in list(stack.runtimes):
            await runtime.stop()
        await probe.__aexit__(None, None, None)
        await http.aclose()
        await twin.stop()
