"""Benchmark (not a test): API read throughput and latency, driven by wrk (Debian's package).

Two modes:
- embedded: `certrotate demo` (the four services and the twin in one process, SQLite), one
  completed rotation, its API kept up.
- distributed: two orchestrator API replicas (separate processes) on PostgreSQL and Kafka behind
  a local balancer (Debian's haproxy, round robin, HTTP keep-alive), and one replica alone for
  comparison. A completed rotation is seeded first through the API with a stand-in worker
  answering every command (as in bench/orchestrator_throughput.py).

Rows: the rotation view and its history, read in full (no If-None-Match, as a first read or a
client without a cache) and conditionally (If-None-Match with the current ETag: 304). Closed
loop at each `--connections`, then paced near `--rate` requests/s (wrk's delay() per
connection). `--tree DIR` runs the servers from another checkout (e.g. `git worktree add` of
the commit before a change) to compare before/after in the same minutes. Needs deploy/local/up.sh
for the distributed mode. Usage:
    .venv/bin/python bench/api_reads.py [--mode embedded|distributed] [--connections 1,4,16]
        [--seconds 8] [--rate 500] [--tree DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

PG = os.environ.get(
    "CERTROTATE_TEST_PG_URL", "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate"
)
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")
PACKAGES = ["shared", "simulator", *(f"services/{s}" for s in
            ("orchestrator", "certificates", "replication", "client-monitor"))]  # fmt: skip

# One orchestrator replica serving its API; its peers are never called by a read.
REPLICA = """
import asyncio, os
import httpx
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
async def main():
    runtime = build_runtime(
        Settings(database_url=os.environ["PG"], database_schema=os.environ["SCHEMA"],
                 vault_url=os.environ["PG"], vault_schema=os.environ["SCHEMA"] + "_vault",
                 transport="kafka",
                 kafka_bootstrap=os.environ["KAFKA"], topic_prefix=os.environ["PREFIX"],
                 master_key=os.environ["KEY"], admin_token=os.environ["ADMIN"],
                 internal_token=os.environ["INTERNAL"], log_level="WARNING",
                 http_host="127.0.0.1", http_port=0),
        certificates_client=httpx.AsyncClient(base_url="http://127.0.0.1:9"),
        client_monitor_client=httpx.AsyncClient(base_url="http://127.0.0.1:9"),
    )
    await runtime.start()
    print("ready", runtime.http_url, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

HAPROXY = """global
    maxconn 2048
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend api
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    http-reuse always
{servers}
"""


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, latency percentiles (ms) and non-2xx/3xx answers from `wrk --latency`."""
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    stats: dict[str, float] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            number = parts[1].rstrip("usm")
            stats[parts[0]] = float(number) * units[parts[1][len(number) :]]
        elif line.startswith("Requests/sec:"):
            stats["rps"] = float(parts[1])
        elif len(parts) > 2 and parts[1] == "requests" and parts[2] == "in":
            stats["requests"] = float(parts[0])
        elif "Non-2xx or 3xx responses" in line:
            stats["errors"] = float(parts[-1])
    return stats


def env_for(tree: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    if tree is not None:  # shadows the editable installs of this checkout
        env["PYTHONPATH"] = os.pathsep.join([str(tree), *(str(tree / p) for p in PACKAGES)])
    return env | {"COLUMNS": "200"}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the server processes used so far (what a request costs them)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str, connections: int, seconds: int, *, etag: str | None,
        pace_ms: float | None = None, pids: list[int]) -> dict[str, float]:  # fmt: skip
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", f"Authorization: Bearer {token}"]  # fmt: skip
    if etag:
        args += ["-H", f"If-None-Match: {etag}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if pace_ms is not None:
            script.write(f"function delay()\n  return {pace_ms:.1f}\nend\n")
    args += ["-s", script.name, url]
    before = cpu_seconds(pids)
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    stats = parse_wrk(out)
    stats["cpu_ms"] = (cpu_seconds(pids) - before) * 1000 / max(stats.get("requests", 1), 1)
    return stats


def measure(label: str, base: str, token: str, rotation: str, connections: list[int],
            seconds: int, rate: int, pids: list[int]) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/v1/rotations/{rotation}", f"/v1/rotations/{rotation}/events"):
        first = httpx.get(base + path, headers=headers, timeout=30)
        first.raise_for_status()
        name = path.replace(rotation, "{id}")
        kinds = [("full", None)] + ([("304", first.headers["etag"])] if "etag" in first.headers
                                    else [])  # fmt: skip
        for kind, etag in kinds:
            runs = [(f"{c}", wrk(base + path, token, c, seconds, etag=etag, pids=pids))
                    for c in connections]  # fmt: skip
            paced_connections = 20
            runs.append((f"{paced_connections} paced", wrk(
                base + path, token, paced_connections, seconds, etag=etag,
                pace_ms=paced_connections * 1000 / rate, pids=pids)))  # fmt: skip
            for conns, s in runs:
                print(
                    f"{label:<22} {name + ' ' + kind:<34} {conns:>9} {s['rps']:>7.0f} "
                    f"{s['50%']:>7.1f} {s['90%']:>7.1f} {s['99%']:>7.1f} {s['errors']:>5.0f} "
                    f"{s['cpu_ms']:>7.2f}  "
                    f"load {Path('/proc/loadavg').read_text().split()[0]}",
                    flush=True,
                )


def header() -> None:
    print(f"{'server':<22} {'endpoint':<34} {'conns':>9} {'req/s':>7} {'p50 ms':>7} "
          f"{'p90 ms':>7} {'p99 ms':>7} {'non2xx':>5} {'cpu ms/req':>7}")  # fmt: skip


def embedded(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="certrotate-bench-api-"))
    demo = subprocess.Popen(
        [str(REPO / ".venv/bin/certrotate"), "demo", "--port", str(args.port), "--data-dir",
         str(data_dir)],
        cwd=args.tree or REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=env_for(args.tree),
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        api_url, rotated = "", False
        for line in demo.stdout:  # the rotation's report, then where the API stays up
            rotated = rotated or "stay up until Ctrl-C" in line
            if rotated and line.split()[:1] == ["API"]:
                api_url = line.split()[1]
                break
        if not api_url:
            sys.exit("the demo did not come up")
        token = json.loads((data_dir / "secrets.json").read_text())["admin_token"]
        listing = httpx.get(f"{api_url}/v1/rotations", headers={"Authorization": f"Bearer {token}"})
        header()
        measure("embedded", api_url, token, listing.json()["items"][0]["id"],
                args.connections, args.seconds, args.rate, [demo.pid])  # fmt: skip
    finally:
        demo.terminate()
        demo.wait(20)


async def seed(schema: str, prefix: str, key: str, admin: str, internal: str) -> str:
    """One completed rotation in `schema`, through the API, a stand-in worker answering."""
    from orchestrator.bootstrap import build_runtime
    from orchestrator.settings import Settings
    from tests.integration.orchestrator.harness import fake_certificates_app
    from tests.integration.orchestrator.support import (
        StandInWorker,
        fake_monitor_app,
        rotation_body,
        server_body,
        site_body,
    )

    def asgi(app: object, name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")  # type: ignore[arg-type]

    worker = StandInWorker(
        database_url=PG, database_schema=f"{schema}_worker", transport="kafka",
        kafka_bootstrap=KAFKA, topic_prefix=prefix, master_key=key, log_level="WARNING",
    )  # fmt: skip
    runtime = build_runtime(
        Settings(database_url=PG, database_schema=schema, vault_url=PG,
                 vault_schema=f"{schema}_vault",
                 transport="kafka", kafka_bootstrap=KAFKA, topic_prefix=prefix, master_key=key,
                 admin_token=admin, internal_token=internal, log_level="WARNING",
                 rehearsal=True),  # the stand-in site uses the twin driver
        certificates_client=asgi(fake_certificates_app(), "certificates"),
        client_monitor_client=asgi(fake_monitor_app(), "monitor"),
    )  # fmt: skip
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    assert runtime.app is not None
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://o",
                            headers={"Authorization": f"Bearer {admin}"}, timeout=60)  # fmt: skip
    try:
        (
            await api.post("/v1/sites", json=site_body("site-a", partners=["site-b"]))
        ).raise_for_status()
        for name in ("sepm-a1", "sepm-a2"):
            (await api.post("/v1/servers", json=server_body(name))).raise_for_status()
        created = await api.post("/v1/rotations", json=rotation_body())
        created.raise_for_status()
        rotation: str = created.json()["id"]
        for _ in range(600):
            if (await api.get(f"/v1/rotations/{rotation}")).json()["state"] == "completed":
                return rotation
            await asyncio.sleep(0.2)
        sys.exit("the seeded rotation did not complete")
    finally:
        await api.aclose()
        await worker.runtime.stop()
        await runtime.stop()


@contextmanager
def replicas(
    count: int, env: dict[str, str], tree: Path | None
) -> Iterator[tuple[list[str], list[int]]]:
    procs, urls = [], []
    try:
        for _ in range(count):
            proc = subprocess.Popen([sys.executable, "-c", REPLICA], cwd=tree or REPO, env=env,
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
            procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                sys.exit("a replica did not start")
            urls.append(line.split()[1])
        yield urls, [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)


@contextmanager
def balancer(urls: list[str], port: int) -> Iterator[str]:
    servers = "\n".join(f"    server r{i} {u.removeprefix('http://')}" for i, u in enumerate(urls))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as config:
        config.write(HAPROXY.format(port=port, servers=servers))
    proc = subprocess.Popen(["haproxy", "-db", "-f", config.name], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)
        os.unlink(config.name)


def distributed(args: argparse.Namespace) -> None:
    from certrotate_shared.secretbox import generate_master_key
    from tests.integration.orchestrator.support import ADMIN, INTERNAL

    run = uuid.uuid4().hex[:8]
    schema, prefix, key = f"reads_{run}", f"reads{run}", generate_master_key()
    rotation = asyncio.run(seed(schema, prefix, key, ADMIN, INTERNAL))
    env = env_for(args.tree) | {"PG": PG, "KAFKA": KAFKA, "SCHEMA": schema, "PREFIX": prefix,
                                 "KEY": key, "ADMIN": ADMIN, "INTERNAL": INTERNAL}  # fmt: skip
    header()
    with replicas(2, env, args.tree) as (urls, pids):
        with balancer(urls, args.port) as front:
            measure("2 replicas + haproxy", front, ADMIN, rotation, args.connections,
                    args.seconds, args.rate, pids)  # fmt: skip
        if not args.no_single:
            measure("1 replica, direct", urls[0], ADMIN, rotation, args.connections,
                    args.seconds, args.rate, pids[:1])  # fmt: skip
    asyncio.run(drop_schemas([schema, f"{schema}_vault", f"{schema}_worker"]))


async def drop_schemas(schemas: list[str]) -> None:
    from sqlalchemy import text

    from certrotate_shared.db import make_engine

    engine = make_engine(PG, "public")
    async with engine.begin() as conn:
        for schema in schemas:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--connections", default="1,4,16", help="wrk connections, comma-separated")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=500, help="the paced rows' requests/s")
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--tree", type=Path, help="run the servers from this checkout")
    parser.add_argument("--no-single", action="store_true", help="skip the one-replica rows")
    parsed = parser.parse_args()
    parsed.connections = [int(c) for c in parsed.connections.split(",")]
    (distributed if parsed.mode == "distributed" else embedded)(parsed)
