"""Benchmark: the client-monitor's watch code scanning 1,000,000 twin clients.

Starts the twin as its own process (1M clients, clock speed 120), then in this process runs
one full scan and one incremental scan through `WatchScanner` (the service's scan loop body:
the shared httpx connector over HTTPS to the server's 8446 port, the columnar client table,
the tally). Between the two scans verification is turned off for the push group, so the
incremental scan carries every client that took the new policy. Reports the scan times and
the peak RSS of this (the monitoring) process, sampled every 20 ms. Not a test.

    .venv/bin/python bench/monitor_scan.py [--clients 1000000] [--page-size 1000] [--speed 120]

The twin's clock speed sets how much CPU its fleet simulation takes beside the pages: every
tick advances each client due a check-in, and at 3600 (the speed of the runs before
2026-11-30 16:30 UTC) 500,000 pull clients on a 5-minute heartbeat check in 12 times a real
second, ~11% of a core with no request at all (5.5% at 120). A real SEPM spends that on its
own server. 120 still gets every push client the change within the one real second the
bench waits (push clients fetch within 60 simulated seconds).
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
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import yaml

from certrotate_shared import event_loop
from certrotate_shared.clock import ScaledClock
from certrotate_shared.envelope import Envelope
from certrotate_shared.messages.client_monitor import AwaitPolicyPropagation
from certrotate_shared.messages.common import GroupTarget, HostOpsTarget, SiteTarget
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.sepm.api import SepmApi
from certrotate_shared.sepm.client import SepmClient, SepmCredentials
from certrotate_shared.unit_of_work import UnitOfWork
from client_monitor import bootstrap  # load what the service process loads, and its options
from client_monitor.adapters.repository import WatchRecord
from client_monitor.service_layer.scanning import WatchScanner
from client_monitor.settings import Settings

WORKSTATIONS, SERVERS = "My Company\\Workstations", "My Company\\Servers"


def scenario(clients: int, speed: float = 120) -> dict:
    half = clients // 2
    return {
        "seed": 7,
        "clock": {"speed": speed},
        "sites": [
            {
                "name": "bench",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-bench1"}, {"name": "sepm-bench2"}],
                "groups": [
                    {
                        "name": WORKSTATIONS,
                        "clients": half,
                        "mode": "pull",
                        "heartbeat_s": 300,
                        "offline": {"fraction": 0.02, "days": 10},
                    },
                    {"name": SERVERS, "clients": clients - half, "mode": "push"},
                ],
            }
        ],
    }


class PeakRss:
    """Samples this process's resident set size in a thread."""

    def __init__(self, every_s: float = 0.02) -> None:
        self._proc = psutil.Process()
        self._every = every_s
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


class CountingSepm:
    """Counts the records each scan receives."""

    def __init__(self, sepm: SepmClient) -> None:
        self.sepm = sepm
        self.records = 0

    def __getattr__(self, name: str):  # every other call goes to SEPM as is
        return getattr(self.sepm, name)

    async def iter_computer_pages(self, **kwargs):  # the watch's pages before msgspec
        async for page in self.sepm.iter_computer_pages(**kwargs):
            self.records += len(page)
            yield page

    async def iter_computer_page_bodies(self, read, **kwargs):
        async for page in self.sepm.iter_computer_page_bodies(read, **kwargs):
            self.records += len(page)
            yield page


async def set_verification(sepm: SepmClient, group_id: str, enabled: bool) -> None:
    body = {
        "configuration": {
            "general_settings": {"security_settings": {"secure_communications": enabled}}
        }
    }
    for location in await sepm.group_locations(group_id):
        await sepm.patch_location_settings(group_id, location.id, body)


class BenchHost:
    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock

    def uow(self) -> UnitOfWork:  # the benchmark reports nothing
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
    site = SiteTarget(
        site="bench",
        version="14.3.9000",
        api_url=site_view["api_url"],
        credential_ref="sepm/bench",
        trusted_certificates_pem=[topology["ca_certificate_pem"]],
        servers=[],
        host_ops=HostOpsTarget(driver="twin", endpoint=ready["url"]),
    )

    # Opened as the service opens its SEPM clients (a "before" tree may predate the options).
    options = getattr(bootstrap, "SEPM_CLIENT_OPTIONS", {})

    def connect() -> SepmClient:
        return SepmClient(
            site.api_url,
            SepmCredentials("admin", "admin"),
            trusted_certificates_pem=site.trusted_certificates_pem,
            **options,
        )

    async def connect_async(_site: SiteTarget) -> SepmApi:
        return connect()

    sepm = connect()
    ids = {g["fullPathName"]: g["id"] async for g in sepm.iter_groups()}
    servers_id = ids[SERVERS]
    # Step 2 for the push group: its clients fetch the new serial within a simulated minute.
    await set_verification(sepm, servers_id, False)
    groups = [g async for g in sepm.iter_groups()]
    targets = [
        GroupTarget(
            group_id=g["id"],
            full_path_name=g["fullPathName"],
            target_serial=g["policySerialNumber"],
        )
        for g in groups
    ]
    command = AwaitPolicyPropagation(
        idempotency_key="bench:await:1",
        site=site,
        watch_id="bench",
        groups=targets,
        deadline=datetime.now(UTC) + timedelta(days=30),
    )
    record = WatchRecord(
        watch_id="bench",
        saga_id="bench",
        site="bench",
        status="open",
        deadline=command.deadline,
        envelope=Envelope.wrap(command, saga_id="bench"),
        counts=None,
        outcome_type=None,
        outcome=None,
        opened_at=datetime.now(UTC),
        closed_at=None,
    )
    settings = Settings(
        master_key=generate_master_key(),
        internal_token=secrets.token_urlsafe(32),
        page_size=args.page_size,
    )
    scanner = WatchScanner(
        record,
        host=BenchHost(clock),
        connector=connect_async,
        settings=settings,
        owner="bench",
    )
    rss_before = psutil.Process().memory_info().rss
    counting = CountingSepm(sepm)
    twin = psutil.Process(ready["pid"])

    def twin_cpu() -> float:
        times = twin.cpu_times()
        return times.user + times.system

    with PeakRss() as rss:
        t0, c0, w0 = time.perf_counter(), time.process_time(), twin_cpu()
        await scanner.scan(counting)
        full_s, full_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        full_twin_cpu_s = twin_cpu() - w0
        full, full_records = scanner.tally, counting.records
        rss_after_full = psutil.Process().memory_info().rss
        rss_peak_full = rss.peak
        since_ms = scanner._since_ms

        # A later change (a later serial still counts as reached): 500,000 clients move.
        await set_verification(sepm, servers_id, True)
        await asyncio.sleep(1.0)  # >= 120 simulated s: push clients fetch within 60 s
        counting.records = 0
        t0, c0, w0 = time.perf_counter(), time.process_time(), twin_cpu()
        await scanner.scan(counting)
        incremental_s, incremental_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        incremental_twin_cpu_s = twin_cpu() - w0
        incremental, incremental_records = scanner.tally, counting.records
    await sepm.close()
    assert full is not None and incremental is not None
    return {
        "clients": args.clients,
        "page_size": args.page_size,
        "twin_clock_speed": args.speed,
        "full_scan_s": round(full_s, 2),
        # CPU of this (the monitoring) process only: less at the mercy of the machine's load.
        "full_scan_cpu_s": round(full_cpu_s, 2),
        # The twin rendering the pages, in its own process on the same cores.
        "full_scan_twin_cpu_s": round(full_twin_cpu_s, 2),
        "full_scan_records": full_records,
        "full_scan_records_per_s": round(full_records / full_s),
        "full_scan_reached": full.reached,
        "incremental_scan_s": round(incremental_s, 2),
        "incremental_scan_cpu_s": round(incremental_cpu_s, 2),
        "incremental_scan_twin_cpu_s": round(incremental_twin_cpu_s, 2),
        "incremental_records": incremental_records,
        "incremental_last_update_ms": since_ms,
        "incremental_reached": incremental.reached,
        "watched_clients": len(scanner.table),
        "rss_before_scan_mb": round(rss_before / 2**20),
        "rss_after_full_scan_mb": round(rss_after_full / 2**20),
        "rss_peak_full_scan_mb": round(rss_peak_full / 2**20),
        "rss_peak_mb": round(rss.peak / 2**20),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before_after": [ready["load"], os.getloadavg()[0]],
        "machine": f"{os.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=120, help="the twin's clock speed")
    args = parser.parse_args()
    if args.speed < 120:
        parser.error("--speed below 120 leaves push clients without the change when read")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario(args.clients, args.speed)))
        proc = subprocess.Popen(
            [sys.executable, "-m", "sepm_twin", "--scenario", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            load = os.getloadavg()[0]
            ready = {**json.loads(proc.stdout.readline()), "pid": proc.pid, "load": load}
            result = event_loop.run(run(args, ready))  # the client-monitor's loop
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
