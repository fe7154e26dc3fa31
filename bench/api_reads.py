"""Benchmark (not a test): API read throughput and latency.

Starts `certrotate demo` (embedded stack and the twin in one process, one completed rotation,
API kept up) as its own process, then drives each read endpoint with wrk (`apt-get install
wrk`) at 1, 4 and 16 connections. Usage:
    .venv/bin/python bench/api_reads.py [--connections 1,4,16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from `wrk --latency` output."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    stats: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            number = parts[1].rstrip("usm")
            unit = parts[1][len(number) :]
            stats[parts[0]] = float(number) * units[unit]
        elif line.startswith("Requests/sec:"):
            stats["rps"] = float(parts[1])
    return stats


def main(connections_list: list[int], seconds: int, port: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="certrotate-bench-api-"))
    demo = subprocess.Popen(
        [
            str(REPO / ".venv/bin/certrotate"),
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert demo.stdout is not None
        api_url = ""
        for line in demo.stdout:
            if "The API stays up at" in line:
                api_url = line.split("at", 1)[1].split()[0]
                break
        if not api_url:
            sys.exit("the demo did not come up")
        token = json.loads((data_dir / "secrets.json").read_text())["admin_token"]
        headers = {"Authorization": f"Bearer {token}"}
        rotation = httpx.get(f"{api_url}/v1/rotations", headers=headers).json()["items"][0]["id"]
        paths = [
            f"/v1/rotations/{rotation}",
            "/v1/rotations",
            f"/v1/rotations/{rotation}/events",
            "/v1/sites",
        ]
        # wrk (Debian's package) drives the load: a Python client saturates before the server.
        print(
            f"{'endpoint':<34} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
        )
        for path in paths:
            for connections in connections_list:
                out = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        f"-c{connections}",
                        f"-d{seconds}s",
                        "--latency",
                        "-H",
                        f"Authorization: Bearer {token}",
                        api_url + path,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                stats = parse_wrk(out)
                label = path.replace(rotation, "{id}")
                print(
                    f"{label:<34} {connections:>5} {stats['rps']:>7.0f} {stats['50%']:>7.1f} "
                    f"{stats['90%']:>7.1f} {stats['99%']:>7.1f}",
                    flush=True,
                )
    finally:
        demo.terminate()
        demo.wait(20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="1,4,16", help="wrk connections, comma-separated")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=18181)
    args = parser.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    main(levels, args.seconds, args.port)
