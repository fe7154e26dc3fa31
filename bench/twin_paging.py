"""Benchmark: page 1,000,000 twin clients through /computers?pageSize=1000.

Starts the twin as its own process (so its RSS is measured alone), authenticates, pages every
client once and reports records/s and the twin's resident memory. Not a test.

    .venv/bin/python bench/twin_paging.py [--clients 1000000] [--tls]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml


def scenario(clients: int) -> dict:
    half = clients // 2
    return {
        "seed": 7,
        "clock": {"speed": 3600},
        "sites": [
            {
                "name": "bench",
                "version": "14.3.9000",
                "servers": [{"name": "sepm-bench1"}, {"name": "sepm-bench2"}],
                "groups": [
                    {
                        "name": "My Company\\Workstations",
                        "clients": half,
                        "mode": "pull",
                        "heartbeat_s": 300,
                        "offline": {"fraction": 0.02, "days": 10},
                    },
                    {"name": "My Company\\Servers", "clients": clients - half, "mode": "push"},
                ],
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--tls", action="store_true", help="page over the 8446 TLS port")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario(args.clients)))
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sepm_twin", "--scenario", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            startup = time.perf_counter() - began
            base = (
                ready["sites"]["bench"] if args.tls else (f"{ready['url']}/sites/bench/sepm/api/v1")
            )
            twin = psutil.Process(proc.pid)
            rss_start = twin.memory_info().rss
            ca = httpx.get(f"{ready['url']}/twin/v1/topology").json()["ca_certificate_pem"]
            trust = ssl.create_default_context(cadata=ca)
            with httpx.Client(base_url=base, verify=trust, timeout=60) as http:
                token = http.post(
                    "/identity/authenticate",
                    json={"username": "admin", "password": "admin", "domain": ""},
                ).json()["token"]
                http.headers["Authorization"] = f"Bearer {token}"
                seen = 0
                peak = rss_start
                index = 1
                t0 = time.perf_counter()
                while True:
                    body = http.get(
                        "/computers", params={"pageIndex": index, "pageSize": args.page_size}
                    ).json()
                    seen += body["numberOfElements"]
                    if index % 100 == 0:
                        peak = max(peak, twin.memory_info().rss)
                    if body["lastPage"]:
                        break
                    index += 1
                elapsed = time.perf_counter() - t0
                peak = max(peak, twin.memory_info().rss)
                # An incremental scan, as a propagation watcher does after its first full one:
                # turn verification off for the push group, let it propagate, fetch changes.
                group = next(
                    g
                    for g in http.get("/groups", params={"pageSize": 100}).json()["content"]
                    if g["name"] == "Servers"
                )
                # SEPM answers the locations as strings; the default one is on the group.
                http.patch(
                    f"/groups/{group['id']}/locations/{group['defaultLocationId']}/settings",
                    json={
                        "configuration": {
                            "general_settings": {
                                "security_settings": {"secure_communications": False}
                            }
                        }
                    },
                )
                since = next(
                    g["policyDate"]
                    for g in http.get("/groups", params={"pageSize": 100}).json()["content"]
                    if g["id"] == group["id"]
                )
                time.sleep(1.0)  # > 60 simulated seconds at speed 3600
                t1 = time.perf_counter()
                incremental, index2 = 0, 1
                while True:
                    body = http.get(
                        "/computers",
                        params={
                            "pageIndex": index2,
                            "pageSize": args.page_size,
                            "lastUpdate": since,
                        },
                    ).json()
                    incremental += body["numberOfElements"]
                    if body["lastPage"]:
                        break
                    index2 += 1
                incremental_s = time.perf_counter() - t1
                tick_ms = httpx.get(f"{ready['url']}/twin/v1/clock").json()["last_tick_ms"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    result = {
        "clients": args.clients,
        "records": seen,
        "pages": index,
        "transport": "https (8446)" if args.tls else "http (control plane)",
        "seconds": round(elapsed, 2),
        "records_per_s": round(seen / elapsed),
        "startup_s": round(startup, 2),
        "incremental_scan": {
            "records_changed_since_policy_change": incremental,
            "seconds": round(incremental_s, 2),
        },
        "fleet_tick_ms": tick_ms,
        "rss_after_start_mb": round(rss_start / 2**20),
        "rss_peak_mb": round(peak / 2**20),
        "machine": f"{os.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, {platform.platform()}",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
