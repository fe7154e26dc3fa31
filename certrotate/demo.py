"""`certrotate demo`: a simulated two-site fleet, rotated end to end in accelerated time.

The twin (SEPM simulator) runs in this process with its clock at `speed` simulated seconds per
real second; the four services run embedded and share that clock, so a week of propagation
waiting passes in about a minute. Everything goes through the public REST API, as an ITSM
integration would.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text

from certrotate.demo_report import build_report, render_report
from certrotate.rotation_view import rotation_screen
from certrotate.stack import ClockSync, EmbeddedStack, start_embedded
from certrotate.twin_inventory import register_twin
from certrotate_shared.sepm.client import SepmClient, SepmCredentials

DEMO_SITE = "site-a"
TERMINAL = ("completed", "compensated", "failed")


def demo_scenario(speed: float, password: str) -> dict[str, Any]:
    """Site A (two servers) replicates with site B; some laptops are away for three days."""
    return {
        "seed": 7,
        "clock": {"speed": speed},
        "admin": {"username": "certrotate-svc", "password": password},
        "sites": [
            {
                "name": "site-a",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
                "replication_partners": ["site-b"],
                "groups": [
                    {
                        "name": "My Company\\Workstations",
                        "clients": 240,
                        "mode": "pull",
                        "heartbeat_s": 900,
                        "offline": {"fraction": 0.05, "days": 3},
                    },
                    {"name": "My Company\\Servers", "clients": 60, "mode": "push"},
                ],
            },
            {
                "name": "site-b",
                "version": "14.2.1000",
                "servers": [{"name": "sepm-b1"}],
                "replication_partners": ["site-a"],
                "groups": [{"name": "My Company\\Branch", "clients": 80, "mode": "pull"}],
            },
        ],
    }


def free_port(preferred: int) -> int:
    """The preferred port if it is free (a second demo may still hold 8080), else any port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return 0


class Demo:
    def __init__(self, console: Console, *, speed: float, port: int, data_dir: Path) -> None:
        self.console = console
        self.speed = speed
        self.port = port
        self.data_dir = data_dir
        self.password = secrets.token_urlsafe(16)
        self.events: list[dict[str, Any]] = []
        self.twin: Any = None
        self.stack: EmbeddedStack | None = None

    async def start(self) -> None:
        from sepm_twin import Twin

        # The demo is a rehearsal: each run starts from a clean slate.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.twin = await Twin.start(demo_scenario(self.speed, self.password))
        async with httpx.AsyncClient(base_url=self.twin.base_url) as twin_api:
            clock = (await twin_api.get("/twin/v1/clock")).json()
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        self.stack = await start_embedded(self.data_dir, api_port=free_port(self.port), clock=sync)

    async def stop(self) -> None:
        if self.stack is not None:
            await self.stack.stop()
        if self.twin is not None:
            await self.twin.stop()

    def api(self) -> httpx.AsyncClient:
        assert self.stack is not None
        return httpx.AsyncClient(
            base_url=self.stack.api_url,
            headers={"Authorization": f"Bearer {self.stack.admin_token}"},
            timeout=30,
        )

    async def rotate(self) -> dict[str, Any]:
        """Register the sites, issue a new certificate from the corporate CA, rotate site A."""
        topology = self.twin.topology()
        before = served_fingerprints(topology)
        started = time.monotonic()
        async with self.api() as api, httpx.AsyncClient(base_url=self.twin.base_url) as twin_api:
            await register_twin(api, topology, username="certrotate-svc", password=self.password)
            site = next(s for s in topology["sites"] if s["name"] == DEMO_SITE)
            hostnames = sorted({h for server in site["servers"] for h in server["hostnames"]})
            issued = await twin_api.post(
                "/twin/v1/ca/issue",
                json={"hostnames": hostnames, "format": "pkcs12", "password": secrets.token_hex(8)},
            )
            issued.raise_for_status()
            bundle = issued.json()["install"]
            response = await api.post(
                "/v1/rotations",
                headers={"Idempotency-Key": f"demo-{secrets.token_hex(6)}"},
                json={
                    "site": DEMO_SITE,
                    "change_id": "CHG-DEMO-1",
                    "certificate": {
                        "format": "pkcs12",
                        "data_b64": bundle["data_b64"],
                        "password": bundle["password"],
                    },
                },
            )
            response.raise_for_status()
            view = response.json()
            view = await self.follow(api, view["id"])
            orphans = (await twin_api.get("/twin/v1/ground-truth/orphans")).json()
        replication = await self.replication_status(site, topology)
        return build_report(
            view,
            before,
            served_fingerprints(self.twin.topology()),
            orphans,
            replication,
            real_seconds=time.monotonic() - started,
        )

    async def follow(self, api: httpx.AsyncClient, rotation_id: str) -> dict[str, Any]:
        """Poll the rotation and its events until it ends, drawing live progress."""
        after = 0
        view: dict[str, Any] = {}
        with Live(console=self.console, refresh_per_second=8, transient=False) as live:
            while True:
                view = (await api.get(f"/v1/rotations/{rotation_id}")).json()
                page = (
                    await api.get(f"/v1/rotations/{rotation_id}/events", params={"after": after})
                ).json()
                # `after` is the last entry seen: next_after is only set when the answer paged.
                fresh = [e for e in page["items"] if e["seq"] > after]
                self.events += fresh
                after = max([after, *(e["seq"] for e in fresh)])
                live.update(rotation_screen(view, self.events, self.console))
                if view["state"] in TERMINAL or view["state"] == "paused":
                    return view
                await asyncio.sleep(0.25)

    async def replication_status(
        self, site: dict[str, Any], topology: dict[str, Any]
    ) -> dict[str, Any]:
        """Read replication status straight from SEPM's API (the twin), not from our records."""
        client = SepmClient(
            site["api_url"],
            SepmCredentials("certrotate-svc", self.password),
            trusted_certificates_pem=[topology["ca_certificate_pem"]],
        )
        try:
            status = await client.replication_status()
        finally:
            await client.close()
        partners = status["replicationStatus"]["replicationPartnerStatusList"]
        return {p["name"]: p["status_code"] for p in partners}


def served_fingerprints(topology: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        server["name"]: dict(server["served_fingerprints"])
        for site in topology["sites"]
        if site["name"] == DEMO_SITE
        for server in site["servers"]
    }


def where_to_look(api_url: str, secrets_file: Path) -> str:
    """The API and the dashboard side by side, and where the token to sign in with is."""
    return (
        f"  API        {api_url}  (OpenAPI at {api_url}/docs)\n"
        f'  dashboard  {api_url}/dashboard/  (sign in: "admin_token" in {secrets_file})'
    )


async def run_demo(
    *, speed: float, port: int, data_dir: Path, keep_running: bool, as_json: bool
) -> int:
    console = Console(stderr=as_json)
    demo = Demo(console, speed=speed, port=port, data_dir=data_dir)
    try:
        console.print(
            f"[bold]certrotate demo[/]: starting the twin ({speed:g}x time) and the services…"
        )
        await demo.start()
        assert demo.stack is not None
        console.print(Text(where_to_look(demo.stack.api_url, data_dir / "secrets.json")))
        report = await demo.rotate()
        console.print()
        console.print(render_report(report))
        if as_json:
            print(json.dumps(report), flush=True)
        ok = report["status"] == "completed" and report["orphaned_clients"] == 0
        if keep_running:
            assert demo.stack is not None
            console.print(
                Text(
                    "\nThe API and the dashboard stay up until Ctrl-C.\n"
                    + where_to_look(demo.stack.api_url, data_dir / "secrets.json")
                )
            )
            await asyncio.Event().wait()
        return 0 if ok else 1
    finally:
        await demo.stop()
