"""End-to-end helpers: the twin as its own OS process, the four services as theirs
(certrotate.distributed), and the calls an operator or an auditor would make."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from certrotate.distributed import DistributedConfig, Supervisor, die_with_parent
from certrotate.stack import ClockSync
from certrotate.twin_inventory import register_twin
from certrotate_shared.messages.common import ServerTarget
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.sepm.answers import locations
from certrotate_shared.tlsprobe import served_fingerprints

REPO = Path(__file__).resolve().parents[2]
LOG_ROOT = REPO / "var" / "test-logs" / "e2e"
SEPM_USER, SEPM_PASSWORD = "certrotate-svc", "Twin-Pass-2026!"
TERMINAL = ("completed", "compensated", "failed")

# Fast loops for accelerated time; every other setting is the product's default.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "orchestrator": {"timer_poll_seconds": 0.2},
    "certificates": {"verify_interval_s": 0.2, "work_poll_s": 0.1},
    "client-monitor": {
        "min_scan_interval_real_s": 0.2,
        "progress_min_interval_real_s": 0.5,
        "work_poll_s": 0.2,
    },
    "replication": {"work_poll_s": 0.1},
}


# A crashed replica's work moves to the restarted one when its lease runs out: short leases
# (real seconds) keep the crash tests quick; the defaults are 60 s, 120 s and 30 s.
SHORT_LEASES: dict[str, dict[str, Any]] = {
    "certificates": {"work_lease_s": 5},
    "replication": {"work_lease_s": 5},
    "client-monitor": {"work_lease_s": 5},
}


def scenario(
    *,
    speed: float = 3600,
    seed: int = 7,
    clients: int = 200,
    heartbeat_s: int = 300,
    offline: dict[str, float] | None = None,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Site A (two management servers) replicating with site B (one server)."""
    group: dict[str, Any] = {
        "name": "My Company\\Workstations",
        "clients": clients,
        "mode": "pull",
        "heartbeat_s": heartbeat_s,
    }
    if offline:
        group["offline"] = offline
    return {
        "seed": seed,
        "clock": {"speed": speed},
        "admin": {"username": SEPM_USER, "password": SEPM_PASSWORD},
        "replication": {"interval_s": 3600, "duration_s": 60},
        "sites": [
            {
                "name": "site-a",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
                "replication_partners": ["site-b"],
                "groups": [
                    group,
                    {"name": "My Company\\Servers", "clients": 20, "mode": "push"},
                ],
            },
            {
                "name": "site-b",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-b1"}],
                "replication_partners": ["site-a"],
                "groups": [{"name": "My Company\\Branch", "clients": 30, "mode": "push"}],
            },
        ],
        "faults": faults or [],
    }


class TwinProcess:
    """`python -m sepm_twin` in its own process, and its control plane over HTTP."""

    def __init__(self, scenario_dict: dict[str, Any], workdir: Path) -> None:
        self.scenario = scenario_dict
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.http: httpx.AsyncClient | None = None
        self.log_path = workdir / "twin.log"

    async def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "scenario.json"
        path.write_text(json.dumps(self.scenario))
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sepm_twin", "--scenario", str(path), "--port", "0",
                cwd=str(REPO), stdout=asyncio.subprocess.PIPE, stderr=log,
                preexec_fn=die_with_parent,
                env={k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")},
            )  # fmt: skip
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"the twin did not start:\n{self.log_path.read_text()[-3000:]}")
        ready = json.loads(raw)
        assert ready["event"] == "ready", ready
        self.url = ready["url"]
        self.http = httpx.AsyncClient(base_url=f"{self.url}/twin/v1", timeout=30)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def get(self, path: str, **params: Any) -> Any:
        assert self.http is not None
        response = await self.http.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: Any = None) -> Any:
        assert self.http is not None
        response = await self.http.post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def topology(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/topology")
        return result

    async def clock_sync(self) -> ClockSync:
        """The twin's clock as the services must share it (measured around one request)."""
        before = time.time()
        clock = await self.get("/clock")
        after = time.time()
        return ClockSync(
            speed=clock["speed"], real_ms=int((before + after) * 500), sim_ms=clock["now_ms"]
        )

    async def orphans(self, site: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            "/ground-truth/orphans", **({"site": site} if site else {})
        )
        return result

    async def operations(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get("/operations")
        return result

    async def server(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/servers/{name}")
        return result

    @contextlib.asynccontextmanager
    async def sepm(self, site: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
        """GETs on the site's SEPM REST API (its plain-HTTP mirror), logged in as the service
        account: what a SEPM administrator would look at."""
        base = f"{self.url}/sites/{site}/sepm/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            login = await http.post(
                "/identity/authenticate",
                json={"username": SEPM_USER, "password": SEPM_PASSWORD, "domain": ""},
            )
            login.raise_for_status()
            headers = {"Authorization": f"Bearer {login.json()['token']}"}

            async def get(path: str, **params: Any) -> Any:
                response = await http.get(path, params=params or None, headers=headers)
                response.raise_for_status()
                return response.json()

            try:
                yield get
            finally:
                await http.post("/identity/logout", headers=headers)

    async def computers(self, site: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        async with self.sepm(site) as get:
            page = 1
            while True:
                body = await get("/computers", pageIndex=page, pageSize=1000)
                items += body["content"]
                if body["lastPage"] or not body["content"]:
                    return items
                page += 1

    async def verification_settings(self, site: str) -> dict[str, bool]:
        """'group/location' -> whether clients there verify the server certificate."""
        found: dict[str, bool] = {}
        async with self.sepm(site) as get:
            for domain in await get("/domains"):
                groups = await get("/groups", pageSize=1000, domain=domain["id"])
                # Inheriting groups list their owner's locations: read each setting where it
                # lives, once.
                for group in (g for g in groups["content"] if not g["policyInheritanceEnabled"]):
                    listed = await get(
                        f"/groups/{group['id']}/locations", hasName="true", domainId=domain["id"]
                    )
                    for location in locations(listed, "GET /groups/{id}/locations"):
                        settings = await get(
                            f"/groups/{group['id']}/locations/{location.id}/settings"
                        )
                        security = settings["configuration"]["general_settings"][
                            "security_settings"
                        ]
                        key = f"{domain['name']}:{group['fullPathName']}/{location.name}"
                        found[key] = bool(security["secure_communications"])
        return found

    async def replication_status(self, site: str) -> dict[str, str]:
        async with self.sepm(site) as get:
            body = await get("/replication/status")
        return {
            p["name"]: p["status_code"]
            for p in body["replicationStatus"]["replicationPartnerStatusList"]
        }

    async def settled_replication(self, site: str, *, timeout: float = 60.0) -> dict[str, str]:
        """The partners' status once no run is in progress (the twin replicates on a schedule,
        so a check that lands mid-run would see PROCESSING)."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.replication_status(site)
            if time.monotonic() > deadline or not set(status.values()) & RUNNING_REPLICATION:
                return status
            await asyncio.sleep(0.5)


RUNNING_REPLICATION = {"CONNECTING", "AUTHENTICATING", "SUBMITTING", "PROCESSING"}


def server_target(server: dict[str, Any]) -> ServerTarget:
    return ServerTarget(
        name=server["name"],
        address="127.0.0.1",
        hostnames=server["hostnames"],
        version=server.get("version") or "14.3.9000",
        ports={str(k): int(v) for k, v in server["ports"].items()},
    )


async def tls_fingerprints(server: dict[str, Any]) -> dict[str, str]:
    """What a client's TLS handshake sees on every TLS port of the server."""
    return await served_fingerprints(server_target(server))


@dataclass(kw_only=True)
class World:
    """The twin, certrotate (however it runs), and an admin client of its REST API."""

    twin: TwinProcess
    api: httpx.AsyncClient
    admin_token: str = field(repr=False)
    seen_states: list[tuple[str, str]] = field(default_factory=list)

    # --- operator actions ---

    async def register(self) -> dict[str, Any]:
        topology = await self.twin.topology()
        await register_twin(self.api, topology, username=SEPM_USER, password=SEPM_PASSWORD)
        return topology

    async def issue_certificate(self, site: str = "site-a") -> dict[str, Any]:
        """A new certificate from the twin's CA for every hostname of the site's servers."""
        topology = await self.twin.topology()
        [entry] = [s for s in topology["sites"] if s["name"] == site]
        hosts = sorted({h for server in entry["servers"] for h in server["hostnames"]})
        issued: dict[str, Any] = await self.twin.post(
            "/ca/issue", {"hostnames": hosts, "format": "pkcs12", "password": "Keystore-Pass-1"}
        )
        return issued

    async def rotate(
        self, site: str = "site-a", options: dict[str, Any] | None = None
    ) -> tuple[str, str]:
        """Start a rotation; returns (rotation id, the new certificate's fingerprint)."""
        issued = await self.issue_certificate(site)
        install = issued["install"]
        body = {
            "site": site,
            "certificate": {
                "format": "pkcs12",
                "data_b64": install["data_b64"],
                "password": install["password"],
            },
            "options": options or {},
            "change_id": f"CHG-{uuid.uuid4().hex[:6]}",
        }
        response = await self.api.post("/v1/rotations", json=body)
        assert response.status_code == 201, response.text
        return response.json()["id"], issued["fingerprint_sha256"].lower()

    async def view(self, rotation_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/rotations/{rotation_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        where = (result["state"], result["current_step"]["name"])
        if not self.seen_states or self.seen_states[-1] != where:
            self.seen_states.append(where)
            print(f"  {time.strftime('%H:%M:%S')} {rotation_id[:8]} {where}", flush=True)
        return result

    async def events(self, rotation_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            response = await self.api.get(
                f"/v1/rotations/{rotation_id}/events", params={"after": after, "limit": 1000}
            )
            response.raise_for_status()
            body = response.json()
            items += body["items"]
            if body["next_after"] is None:
                return items
            after = body["next_after"]

    async def wait_for(
        self,
        rotation_id: str,
        until: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 90.0,
        what: str = "",
    ) -> dict[str, Any]:
        """Poll the rotation until `until(view)`; fail with the last view and the logs."""
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                view = await self.view(rotation_id)
                if until(view):
                    return view
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"rotation {rotation_id} did not reach {what or 'the expected state'} in "
            f"{timeout:g} s; last seen {view.get('state')} at {view.get('current_step')}, "
            f"reason {view.get('reason')!r}, decision {view.get('pending_decision')}\n"
            + self.log_tails()
        )

    async def wait_terminal(self, rotation_id: str, timeout: float = 90.0) -> dict[str, Any]:
        return await self.wait_for(
            rotation_id, lambda v: v["state"] in TERMINAL, timeout=timeout, what="an end state"
        )

    def log_tails(self, lines: int = 15) -> str:
        return ""


@dataclass(kw_only=True)
class E2E(World):
    """Distributed: each service its own OS process."""

    supervisor: Supervisor

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {name} ({service.log_path}) ---\n{service.log_tail(lines)}"
            for name, service in self.supervisor.services.items()
        )


async def site_servers(world: World, site: str = "site-a") -> list[dict[str, Any]]:
    topology = await world.twin.topology()
    [entry] = [s for s in topology["sites"] if s["name"] == site]
    return [await world.twin.server(s["name"]) for s in entry["servers"]]


def lower(fingerprints: dict[str, str]) -> dict[str, str]:
    return {port: fp.lower() for port, fp in fingerprints.items()}


async def assert_site_rotated(
    world: World, rotation_id: str, new_fp: str, before: dict[str, str], timeout: float = 90
) -> dict[str, Any]:
    """What a user checks after a rotation of site A: completed, nobody orphaned, the new
    certificate on every TLS port of both servers, verification on, replication back."""
    view = await world.wait_terminal(rotation_id, timeout)
    assert view["state"] == "completed", (view["reason"], view["pending_decision"])
    assert (await world.twin.orphans())["count"] == 0
    servers = await site_servers(world)
    assert [s["name"] for s in servers] == ["sepm-a1", "sepm-a2"]
    for server in servers:
        handshakes = lower(await tls_fingerprints(server))
        assert set(handshakes) == {"8443", "8446", "443", "8445"}
        # What our own TLS handshakes see, and what the twin says it serves, on every port.
        assert handshakes == dict.fromkeys(handshakes, new_fp)
        assert lower(server["served_fingerprints"]) == handshakes
        assert before[server["name"]] != new_fp
    reported = {s["name"]: s for s in view["servers"]}
    for name, old in before.items():
        assert reported[name]["status"] == "updated"
        assert reported[name]["fingerprint_before"].lower() == old
        assert reported[name]["fingerprint_after"].lower() == new_fp
    # Replication is back and its last run succeeded, as SEPM itself reports it.
    assert await world.twin.settled_replication("site-a") == {"site-b": "SUCCEEDED"}
    assert [(p["name"], p["status_code"]) for p in view["replication"]["restored"]] == [
        ("site-b", "SUCCEEDED")
    ]
    # Verification is on again everywhere; every online client has the latest policy.
    assert view["verification"]["restored_at"] is not None
    assert all((await world.twin.verification_settings("site-a")).values())
    convergence = await world.twin.get("/ground-truth/convergence", site="site-a")
    assert all(g["converged"] for g in convergence["groups"]), convergence
    return view


def acted(operations: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Host operations that did something: answered with success, not a replay of a key."""
    return Counter(
        (op["operation"], op["target"])
        for op in operations
        if not op["replay"] and int(op["status"]) < 400
    )


def missing_operations(done: Counter[tuple[str, str]]) -> list[str]:
    """What a rotation of site A's two servers must have done on the hosts: a backup, the new
    certificate in every store and SEPM's record, service restarts; replication partners
    removed, and added back where they were removed."""
    missing = []
    for server in ("sepm-a1", "sepm-a2"):
        ops = {op for (op, target) in done if target == server or target.startswith(f"{server}/")}
        installed = {"certificate.store.tomcat", "certificate.store.apache", "certificate.record"}
        if "certificate.backup" not in ops:
            missing.append(f"backup of {server}")
        if not installed <= ops and "certificate.install" not in ops:
            missing.append(f"install on {server} ({sorted(installed - ops)})")
        if "service.restart" not in ops:
            missing.append(f"service restarts on {server}")
    # Re-adding a partner on one site is enough: its first run overwrites the partner's database,
    # which carries the partnership back (SEPM's behaviour, the twin's too); the status of both
    # sites afterwards is checked by the tests.
    deleted = {t for (op, t) in done if op == "replication.partner.delete"}
    added = {t for (op, t) in done if op == "replication.partner.add"}
    if not deleted or not added or not added <= deleted:
        missing.append(f"replication partners deleted {sorted(deleted)}, added {sorted(added)}")
    return missing


def host_operation_duplicates(operations: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(operation, target) pairs that acted more than once (replays of a key do not act)."""
    counts = Counter((op["operation"], op["target"]) for op in operations if not op["replay"])
    return {key: n for key, n in counts.items() if n > 1}


async def until(
    check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.2, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


async def delete_topics(bootstrap: str, prefix: str) -> None:
    """Delete the topics named `<prefix>.*` (a test's own); a broker that is gone is left be."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if topics:
            await admin.delete_topics(topics)
    except KafkaError as exc:
        print(f"could not delete the test's topics {prefix}.*: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()


def distributed_config(
    *,
    pg_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    clock: ClockSync,
    log_dir: Path,
    settings: dict[str, dict[str, Any]] | None = None,
) -> DistributedConfig:
    """A private stack: its own topics, schemas (prefix) and vault schema, fresh secrets."""
    suffix = topic_prefix
    merged = {name: dict(values) for name, values in FAST_SETTINGS.items()}
    for name, values in (settings or {}).items():
        merged.setdefault(name, {}).update(values)
    return DistributedConfig(
        database_url=pg_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        schema_prefix=f"{suffix}_",
        vault_schema=f"{suffix}_vault",
        master_key=generate_master_key(),
        internal_token=f"internal-{uuid.uuid4().hex}",
        admin_token=f"admin-{uuid.uuid4().hex}",
        ports=dict.fromkeys(("orchestrator", "replication", "certificates", "client-monitor"), 0),
        clock=clock,
        log_dir=log_dir,
        settings=merged,
        base_env={k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")},
        cwd=REPO,
    )
