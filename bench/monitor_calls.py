"""Benchmark: the SEPM calls a propagation watch makes, against a twin throttled like a real
SEPM (429 past `--twin-limit` calls a minute), with the client-monitor's own pacing.

Starts the twin as its own process (pull clients with a one-hour heartbeat and push clients,
clock speed `--speed`), turns verification off for every group, then runs the service's watch
loop body (`WatchScanner.scan` through the paced SEPM session, then the pause between scans)
until every client is seen at the new policy and `--after` more real seconds have passed.
Every HTTP response the watch receives is counted (logins and 429s included). Reports calls
per real minute (peak and mean), 429s, the full scan's and each incremental scan's calls and
seconds, and when the end of the wait was seen. Not a test.

    .venv/bin/python bench/monitor_calls.py [--clients 100000] [--page-size 1000]
        [--twin-limit 50] [--budget 40] [--burst 10] [--speed 60] [--after 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import yaml

import client_monitor.bootstrap  # noqa: F401  (load what the service process loads)
from certrotate_shared.clock import ScaledClock
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.messages.common import GroupTarget, HostOpsTarget, SiteTarget
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.sepm.api import SepmApi
from certrotate_shared.sepm.client import SepmClient, SepmCredentials
from client_monitor.adapters.repository import WatchRecord
from client_monitor.domain.budget import CallBudget
from client_monitor.service_layer.pacing import PacedSepm
from client_monitor.service_layer.scanning import WatchScanner
from client_monitor.settings import Settings


def scenario(clients: int, speed: float, twin_limit: float) -> dict:
    half = clients // 2
    return {
        "seed": 7,
        "clock": {"speed": speed},
        "rate_limit": {"calls_per_minute": twin_limit},
        "sites": [
            {
                "name": "bench",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-bench1"}],
                "groups": [
                    {"name": "My Company\\Workstations", "clients": half, "heartbeat_s": 3600},
                    {"name": "My Company\\Servers", "clients": clients - half, "mode": "push"},
                ],
            }
        ],
    }


class BenchHost:
    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock

    def uow(self):  # the benchmark reports nothing
        raise NotImplementedError


async def run(args: argparse.Namespace, ready: dict) -> dict:
    async with httpx.AsyncClient(base_url=ready["url"]) as control:
        topology = (await control.get("/twin/v1/topology")).json()
        twin_clock = (await control.get("/twin/v1/clock")).json()
    site_view = topology["sites"][0]
    clock = ScaledClock(
        twin_clock["speed"],
        real_origin_ms=int(time.time() * 1000),
        sim_origin_ms=twin_clock["now_ms"],
    )
    responses: list[tuple[float, int]] = []

    def connect() -> SepmClient:
        client = SepmClient(
            site_view["api_url"],
            SepmCredentials("admin", "admin"),
            trusted_certificates_pem=[topology["ca_certificate_pem"]],
        )

        async def count(response: httpx.Response) -> None:
            responses.append((time.monotonic(), response.status_code))

        client._session.http.event_hooks["response"].append(
            count
        )  # every call, 429s and logins too
        return client

    # Step 2 for every group, by an administrator's session (not counted: not the watch's).
    admin = SepmClient(
        site_view["api_url"],
        SepmCredentials("admin", "admin"),
        trusted_certificates_pem=[topology["ca_certificate_pem"]],
    )
    off = {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": False}}
        }
    }
    groups = [g async for g in admin.iter_groups()]
    for g in groups:
        for location in await admin.group_locations(g["id"]):
            await admin.patch_location_settings(g["id"], location.id, off)
    targets = [
        GroupTarget(
            group_id=g["id"],
            full_path_name=g["fullPathName"],
            target_serial=g["policySerialNumber"],
        )
        async for g in admin.iter_groups()
    ]
    await admin.close()
    site = SiteTarget(
        site="bench", version="14.3.9000", api_url=site_view["api_url"], credential_ref="sepm/bench",
        trusted_certificates_pem=[topology["ca_certificate_pem"]], servers=[],
        host_ops=HostOpsTarget(driver="twin", endpoint=ready["url"]),
    )  # fmt: skip
    command = AwaitPolicyPropagation(
        idempotency_key="bench:await:1", site=site, watch_id="bench", groups=targets,
        deadline=clock.now() + timedelta(days=30), threshold=1.0,
    )  # fmt: skip
    record = WatchRecord(
        watch_id="bench", saga_id="bench", site="bench", status="open", deadline=command.deadline,
        envelope=Envelope.wrap(command, saga_id="bench"), counts=None, outcome_type=None,
        outcome=None, opened_at=datetime.now(UTC), closed_at=None,
    )  # fmt: skip
    settings = Settings(
        master_key=generate_master_key(), internal_token=secrets.token_urlsafe(32),
        page_size=args.page_size, sepm_calls_per_minute=args.budget, sepm_call_burst=args.burst,
    )  # fmt: skip
    budget = CallBudget(args.budget, burst=args.burst) if args.budget else None

    async def connect_async(_site: SiteTarget) -> SepmApi:
        return connect()

    scanner = WatchScanner(
        record, host=BenchHost(clock), connector=connect_async, settings=settings,
        owner="bench", budget=budget,
    )  # fmt: skip
    raw = connect()
    sepm = PacedSepm(raw, budget) if budget else raw
    scans: list[dict] = []
    start = time.monotonic()
    propagated_at: float | None = None
    while True:
        before = len(responses)
        t0 = time.monotonic()
        await scanner.scan(sepm)
        assert scanner.tally is not None
        scans.append(
            {
                "at_s": round(t0 - start, 1),
                "seconds": round(time.monotonic() - t0, 1),
                "calls": len(responses) - before,
                "reached": scanner.tally.reached,
                "total": scanner.tally.total,
            }
        )
        if propagated_at is None and scanner.tally.threshold_met(1.0):
            propagated_at = time.monotonic() - start
        if propagated_at is not None and time.monotonic() - start > propagated_at + args.after:
            break
        await asyncio.gather(
            clock.sleep(settings.scan_interval_s), asyncio.sleep(settings.min_scan_interval_real_s)
        )
    await sepm.close()
    elapsed = time.monotonic() - start
    per_minute = Counter(int((t - start) // 60) for t, _ in responses)
    statuses = Counter(code for _, code in responses)
    steady = [s for s in scans[1:] if propagated_at is not None and s["at_s"] >= propagated_at]
    # Per scan, then per hour of a real SEPM's time (one scan every scan_interval_s).
    steady_per_scan = sum(s["calls"] for s in steady) / len(steady) if steady else None
    return {
        "clients": args.clients,
        "page_size": args.page_size,
        "twin_limit_per_min": args.twin_limit,
        "budget_per_min": args.budget,
        "burst": args.burst,
        "clock_speed": args.speed,
        "scan_interval_s_clock": settings.scan_interval_s,
        "scan_interval_s_real": max(
            settings.scan_interval_s / args.speed, settings.min_scan_interval_real_s
        ),
        "elapsed_real_s": round(elapsed, 1),
        "calls": len(responses),
        "status_counts": dict(statuses),
        "calls_per_minute_peak": max(per_minute.values()) if per_minute else 0,
        "calls_per_minute_mean": round(len(responses) / (elapsed / 60), 1),
        "full_scan": scans[0],
        "incremental_scans": len(scans) - 1,
        "largest_incremental": max(scans[1:], key=lambda s: s["calls"], default=None),
        "propagation_seen_at_real_s": None if propagated_at is None else round(propagated_at, 1),
        "steady_calls_per_scan": None if steady_per_scan is None else round(steady_per_scan, 2),
        "steady_calls_per_hour_at_speed_1": None
        if steady_per_scan is None
        else round(steady_per_scan * 3600 / settings.scan_interval_s, 1),
        "scans": scans if len(scans) <= 40 else scans[:20] + scans[-10:],
        "machine": f"{os.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--twin-limit", type=float, default=50.0)
    parser.add_argument("--budget", type=float, default=40.0, help="0: no pacing")
    parser.add_argument("--burst", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=300.0, help="real s watched after the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario(args.clients, args.speed, args.twin_limit)))
        proc = subprocess.Popen(
            [sys.executable, "-m", "sepm_twin", "--scenario", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            result = asyncio.run(run(args, ready))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
