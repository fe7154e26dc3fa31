"""Benchmark (not a test): one campaign over an estate, in distributed mode, two replicas of
every service as separate processes, one replica of each killed mid-campaign (issue 13 item 4).

Twins (bench/counting_twin.py: `python -m sepm_twin` plus a count of SEPM calls per site; 50
sites each, one clock) hold N sites and M clients: mixed SEPM versions, replication pairs, a pull and a push group
per site, 1% of the clients offline for a week. Two stacks of the four services share one set
of schemas, topics and secrets (replicas of one deployment); the campaign is created through
stack B's API. When a third of the sites have completed, every service of stack A is SIGKILLed
and started again a few seconds later, as a process manager would. Measured: wall time (and
what it is on the twin's clock), CPU seconds and peak RSS per service (both replicas), SEPM API
calls per site per simulated hour, the Kafka topics' and PostgreSQL schemas' sizes, and the
result (sites by state, the twin's orphaned clients). Needs deploy/local/up.sh running.

    .venv/bin/python bench/campaign_scale.py [--sites 200] [--clients 1000000] [--speed 3600]
        [--pairs 60] [--max-concurrent 24] [--wave-size 50] [--timeout 5400] [--stop-at HH:MM]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from certrotate.distributed import WORKERS, DistributedConfig, Supervisor, die_with_parent  # noqa: E402
from certrotate.stack import ClockSync  # noqa: E402
from certrotate.twin_inventory import register_twin  # noqa: E402
from certrotate_shared.db import make_engine  # noqa: E402
from certrotate_shared.secretbox import generate_master_key  # noqa: E402

PG_URL = os.environ.get(
    "CERTROTATE_TEST_PG_URL", "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate"
)
KAFKA = os.environ.get("CERTROTATE_TEST_KAFKA", "127.0.0.1:9092")
KAFKA_DATA = Path(os.environ.get("CERTROTATE_KAFKA_DATA", "/work/main/.local/kafka/data"))
SEPM_USER, SEPM_PASSWORD = "certrotate-svc", "Twin-Pass-2026!"
VERSIONS = ["14.3.9000", "14.3.8268", "14.2.1000"]
SERVICES = ("orchestrator", "replication", "certificates", "client-monitor")


def estate(
    *, sites: int, clients: int, pairs: int, speed: float, seed: int, per_twin: int
) -> list[dict[str, Any]]:
    """N sites, M clients in all: versions in turn, the first 2*pairs sites replicate in pairs,
    every fifth site has two management servers; 70% pull, 30% push; 1% offline for 7 days.
    One scenario per twin."""
    if per_twin % 2:
        raise SystemExit("--sites-per-twin must be even: replication pairs stay in one twin")
    per_site = clients // sites
    specs = []
    for i in range(sites):
        name = f"site-{i:03d}"
        partner = []
        if i < 2 * pairs:
            partner = [f"site-{i + 1:03d}" if i % 2 == 0 else f"site-{i - 1:03d}"]
        servers = [{"name": f"sepm-{i:03d}-1"}] + ([{"name": f"sepm-{i:03d}-2"}] * (i % 5 == 0))
        pull = per_site * 7 // 10 + (clients % sites if i == 0 else 0)
        offline = {"fraction": 0.01, "days": 7}
        specs.append(
            {
                "name": name,
                "version": VERSIONS[i % len(VERSIONS)],
                "servers": servers,
                "replication_partners": partner,
                "groups": [
                    {"name": "My Company\\Workstations", "clients": pull, "mode": "pull",
                     "heartbeat_s": 900, "offline": offline},
                    {"name": "My Company\\Servers", "clients": per_site - per_site * 7 // 10,
                     "mode": "push", "heartbeat_s": 3600, "offline": offline},
                ],
            }
        )  # fmt: skip
    # The estate is spread over twins of `per_twin` sites (pairs stay together), which share
    # one clock once aligned: separate processes, as SEPM sites are separate machines.
    return [
        {
            "seed": seed + n,
            "clock": {"speed": speed},
            "admin": {"username": SEPM_USER, "password": SEPM_PASSWORD},
            "replication": {"interval_s": 3600, "duration_s": 60},
            "sites": specs[start : start + per_twin],
        }
        for n, start in enumerate(range(0, len(specs), per_twin))
    ]


class Twin:
    """The counting twin as its own process."""

    def __init__(self, scenario: dict[str, Any], workdir: Path) -> None:
        self.scenario, self.workdir = scenario, workdir
        self.counts_path = workdir / "sepm_calls.json"
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> float:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "scenario.json"
        path.write_text(json.dumps(self.scenario))
        started = time.monotonic()
        with (self.workdir / "twin.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, str(REPO / "bench" / "counting_twin.py"), "--scenario", str(path),
                "--counts", str(self.counts_path), cwd=str(REPO), stdout=asyncio.subprocess.PIPE,
                stderr=log, preexec_fn=die_with_parent,
                env={k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")},
            )  # fmt: skip
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), 1200)
        if not raw:
            raise RuntimeError("the twin did not start; see " + str(self.workdir / "twin.log"))
        self.url = json.loads(raw)["url"]
        return time.monotonic() - started

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=f"{self.url}/twin/v1", timeout=120) as http:
            response = await http.get(path, params=params or None)
            response.raise_for_status()
            return response.json()

    async def post(self, path: str, body: Any) -> Any:
        async with httpx.AsyncClient(base_url=f"{self.url}/twin/v1", timeout=120) as http:
            response = await http.post(path, json=body)
            response.raise_for_status()
            return response.json()

    async def clock(self) -> ClockSync:
        before = time.time()
        clock = await self.get("/clock")
        after = time.time()
        return ClockSync(
            speed=clock["speed"], real_ms=int((before + after) * 500), sim_ms=clock["now_ms"]
        )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()


class Sampler:
    """CPU seconds and peak RSS per service, over every process of it (restarts included)."""

    def __init__(self, stacks: list[Supervisor], twins: list[Twin]) -> None:
        self.stacks, self.twins = stacks, twins
        self.cpu: dict[int, tuple[str, float]] = {}
        self.peak_rss: dict[str, int] = {}
        self.load: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def _processes(self) -> list[tuple[str, int]]:
        found = [
            (name, service.pid)
            for stack in self.stacks
            for name, service in stack.services.items()
            if service.running and service.pid
        ]
        for twin in self.twins:
            if twin.proc is not None and twin.proc.returncode is None:
                found.append(("twin", twin.proc.pid))
        return found

    def sample(self) -> None:
        self.load.append(os.getloadavg()[0])
        for name, pid in self._processes():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                times = process.cpu_times()
                self.cpu[pid] = (name, times.user + times.system)
                rss = process.memory_info().rss
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    async def run(self, interval: float = 2.0) -> None:
        while True:
            self.sample()
            await asyncio.sleep(interval)

    def cpu_by_service(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, seconds in self.cpu.values():
            totals[name] = totals.get(name, 0.0) + seconds
        return totals


def stack_config(shared: dict[str, Any], log_dir: Path) -> DistributedConfig:
    return DistributedConfig(
        **shared,
        ports=dict.fromkeys(SERVICES, 0),
        log_dir=log_dir,
        base_env={k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")},
        cwd=REPO,
    )


async def database_size(prefix: str) -> int:
    engine = make_engine(PG_URL, "public")
    try:
        async with engine.connect() as conn:
            size = await conn.scalar(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname LIKE :p AND c.relkind IN ('r', 'm')"
                ),
                {"p": f"{prefix}\\_%"},
            )
        return int(size or 0)
    finally:
        await engine.dispose()


def kafka_size(prefix: str) -> int:
    """Bytes of the topics' log segments (not the preallocated index files)."""
    return sum(f.stat().st_size for f in KAFKA_DATA.glob(f"{prefix}.*/*.log"))


async def drop_everything(prefix: str) -> None:
    engine = make_engine(PG_URL, "public")
    try:
        async with engine.begin() as conn:
            schemas = await conn.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": f"{prefix}\\_%"},
            )
            for schema in list(schemas):
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


def sepm_load(counts: dict[str, dict[str, int]], speed: float) -> dict[str, float]:
    """SEPM calls per site: per simulated hour (busiest, and mean over the hours a site was
    called), per rotation (the site's total), and in the busiest real minute, when the
    accelerated clock squeezes speed/60 simulated hours into it."""
    busiest, per_hour, totals, real_minute = 0, [], [], 0
    window = max(1, round(speed / 60))
    for hours in counts.values():
        by_hour = {int(h): n for h, n in hours.items() if n}
        if not by_hour:
            continue
        busiest = max(busiest, max(by_hour.values()))
        per_hour.append(sum(by_hour.values()) / len(by_hour))
        totals.append(sum(by_hour.values()))
        for start in by_hour:
            real_minute = max(
                real_minute, sum(by_hour.get(h, 0) for h in range(start, start + window))
            )
    return {
        "busiest_site_sim_hour": busiest,
        "mean_site_sim_hour": round(sum(per_hour) / len(per_hour), 1) if per_hour else 0.0,
        "busiest_site_real_minute": real_minute,
        "mean_calls_per_site": round(sum(totals) / len(totals), 1) if totals else 0.0,
        "max_calls_per_site": max(totals, default=0),
        "sites_called": len(totals),
        "total_calls": sum(totals),
    }


async def align_clocks(twins: list[Twin]) -> float:
    """Advance every twin to the one furthest ahead; returns the spread left (simulated s)."""
    nows = [(await twin.get("/clock"))["now_ms"] for twin in twins]
    lead = max(nows)
    for twin, now in zip(twins, nows, strict=True):
        if lead > now:
            await twin.post("/clock/advance", {"seconds": (lead - now) / 1000})
    nows = [(await twin.get("/clock"))["now_ms"] for twin in twins]
    return (max(nows) - min(nows)) / 1000


async def restart(stack: Supervisor, after: float) -> float:
    """Start every killed service of the stack again `after` seconds later (workers at once,
    then the orchestrator); how long they took to be ready."""
    await asyncio.sleep(after)
    began = time.monotonic()
    await asyncio.gather(*(stack.start_service(name, timeout=300) for name in WORKERS))
    await stack.start_service("orchestrator", timeout=300)
    print(f"  replica A of every service started again ({time.monotonic() - began:.0f} s)",
          flush=True)  # fmt: skip
    return round(time.monotonic() - began, 1)


async def upload_bundles(api: httpx.AsyncClient, twin: Twin, topology: dict[str, Any]) -> str:
    """One certificate from this twin's CA for all its servers, uploaded once: its id."""
    hosts = sorted({h for s in topology["sites"] for srv in s["servers"] for h in srv["hostnames"]})
    issued = await twin.post(
        "/ca/issue", {"hostnames": hosts, "format": "pkcs12", "password": "Keystore-Pass-1"}
    )
    install = issued["install"]
    body = {"format": "pkcs12", "data_b64": install["data_b64"], "password": install["password"]}
    response = await api.post("/v1/bundles", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"bundle refused: {response.status_code} {response.text}")
    bundle_id: str = response.json()["id"]
    return bundle_id


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"scale{uuid.uuid4().hex[:6]}"
    workdir = REPO / "var" / "bench" / prefix
    scenarios = estate(
        sites=args.sites, clients=args.clients, pairs=args.pairs, speed=args.speed, seed=7,
        per_twin=args.sites_per_twin,
    )  # fmt: skip
    twins = [Twin(sc, workdir / f"twin-{n}") for n, sc in enumerate(scenarios)]
    report: dict[str, Any] = {
        "sites": args.sites, "clients": args.clients, "pairs": args.pairs,
        "speed": args.speed, "max_concurrent": args.max_concurrent, "twins": len(twins),
        "prefix": prefix,
    }  # fmt: skip
    stacks: list[Supervisor] = []
    sampler = Sampler(stacks, twins)
    sampling: asyncio.Task[None] | None = None
    try:
        starts = await asyncio.gather(*(twin.start() for twin in twins))
        report["twin_start_s"] = round(max(starts), 1)
        report["twin_clock_spread_s"] = await align_clocks(twins)
        print(f"{len(twins)} twins up in {report['twin_start_s']} s", flush=True)
        clock = await twins[0].clock()
        shared = {
            "database_url": PG_URL, "kafka_bootstrap": KAFKA, "topic_prefix": prefix,
            "schema_prefix": f"{prefix}_", "vault_schema": f"{prefix}_vault",
            "master_key": generate_master_key(), "internal_token": f"internal-{uuid.uuid4().hex}",
            "admin_token": f"admin-{uuid.uuid4().hex}", "clock": clock,
        }  # fmt: skip
        # Replica A first (it runs the migrations), then B.
        for label in ("a", "b"):
            stack = Supervisor(stack_config(shared, workdir / f"stack-{label}"))
            await stack.start(timeout=180)
            stacks.append(stack)
        sampling = asyncio.ensure_future(sampler.run())
        api_url = stacks[1].api_url
        headers = {"Authorization": f"Bearer {shared['admin_token']}"}
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=600) as api:
            t0 = time.monotonic()
            certificates: dict[str, dict[str, str]] = {}
            order: list[str] = []
            entries = 0
            for twin in twins:
                topology = await twin.get("/topology")
                await register_twin(api, topology, username=SEPM_USER, password=SEPM_PASSWORD)
                entries += len(topology["sites"]) + sum(
                    len(s["servers"]) for s in topology["sites"]
                )
                bundle_id = await upload_bundles(api, twin, topology)
                for site in topology["sites"]:
                    certificates[site["name"]] = {"bundle_id": bundle_id}
                    order.append(site["name"])
            report["register_s"] = round(time.monotonic() - t0, 1)
            report["registered_entries"] = entries
            report["load_at_register"] = round(os.getloadavg()[0], 2)
            print(f"{entries} sites and servers registered in {report['register_s']} s", flush=True)
            body = {
                "name": f"CA retirement {prefix}",
                "plan": {"sites": sorted(order), "canary": 1, "wave_size": args.wave_size},
                "certificates": certificates,
                "max_concurrent": args.max_concurrent, "max_failures": 0,
                "change_id": f"CHG-{prefix}",
            }  # fmt: skip
            sim_start = (await twins[0].get("/clock"))["now_ms"]
            started = time.monotonic()
            created = await api.post("/v1/campaigns", json=body)
            if created.status_code != 201:
                raise RuntimeError(f"campaign refused: {created.status_code} {created.text}")
            campaign_id = created.json()["id"]
            report["create_s"] = round(time.monotonic() - started, 1)
            report["load_at_create"] = round(os.getloadavg()[0], 2)
            print(f"campaign {campaign_id} created in {report['create_s']} s", flush=True)
            killed = False
            restarting: asyncio.Future[float] | None = None
            view: dict[str, Any] = {}
            last_line = ""
            stop_at = started + args.timeout
            if args.stop_at is not None:
                stop_at = min(stop_at, time.monotonic() + (args.stop_at - time.time()))
            while time.monotonic() < stop_at:
                with contextlib.suppress(httpx.HTTPError):
                    response = await api.get(f"/v1/campaigns/{campaign_id}")
                    if response.status_code == 200:
                        view = response.json()
                done = view.get("sites_by_state", {}).get("completed", 0)
                line = f"{view.get('state')} {view.get('sites_by_state')}"
                if line != last_line:
                    elapsed = time.monotonic() - started
                    load = os.getloadavg()[0]
                    print(f"  {elapsed:7.1f} s  load {load:5.2f}  {line}", flush=True)
                    last_line = line
                if view.get("state") in ("completed", "cancelled", "aborted", "halted"):
                    break
                due = done >= args.sites // 3 or time.monotonic() - started >= args.kill_after
                if not killed and due:
                    killed = True
                    report["killed_at_s"] = round(time.monotonic() - started, 1)
                    report["killed_at_completed"] = done
                    print(f"  killing replica A of every service ({done} completed)", flush=True)
                    sampler.sample()
                    for name in SERVICES:
                        stacks[0].kill(name)
                    # Started again in the background, as a process manager would, while the
                    # campaign goes on (and is watched) on replica B.
                    restarting = asyncio.ensure_future(restart(stacks[0], args.restart_after))
                await asyncio.sleep(5)
            if restarting is not None:
                try:
                    report["replica_a_restart_s"] = await restarting
                except Exception as exc:  # the report still says what the campaign did
                    report["replica_a_restart_error"] = repr(exc)
            wall = time.monotonic() - started
            sim_end = (await twins[0].get("/clock"))["now_ms"]
            report["wall_s"] = round(wall, 1)
            report["simulated_days"] = round((sim_end - sim_start) / 86_400_000, 2)
            report["campaign_state"] = view.get("state")
            report["sites_by_state"] = view.get("sites_by_state")
            report["decision_waiting"] = view.get("decision_waiting")
            report["rotations_waiting"] = view.get("rotations_waiting", [])[:5]
        report["orphaned_clients"] = sum(
            [(await twin.get("/ground-truth/orphans"))["count"] for twin in twins]
        )
        sampler.sample()
        report["cpu_s"] = {k: round(v, 1) for k, v in sorted(sampler.cpu_by_service().items())}
        report["peak_rss_mb"] = {k: round(v / 2**20) for k, v in sorted(sampler.peak_rss.items())}
        report["load_average_mean"] = round(sum(sampler.load) / max(1, len(sampler.load)), 2)
        report["load_average_max"] = round(max(sampler.load, default=0.0), 2)
        report["postgres_bytes"] = await database_size(prefix)
        report["kafka_bytes"] = kafka_size(prefix)
        report["restarts"] = {
            name: sum(s.services[name].starts for s in stacks) for name in SERVICES
        }
    finally:
        if sampling is not None:
            sampling.cancel()
        for stack in stacks:
            await stack.stop()
        for twin in twins:
            await twin.stop()
        # A failed run too: its schemas and topics would burden the shared PostgreSQL and Kafka.
        if not args.keep:
            await drop_everything(prefix)
    counts: dict[str, dict[str, int]] = {}
    for twin in twins:
        with contextlib.suppress(OSError, ValueError):
            counts |= json.loads(twin.counts_path.read_text())
    report["sepm_calls"] = sepm_load(counts, args.speed)
    return report


def _utc_time(value: str) -> float:
    """HH:MM today (UTC) as a Unix time."""
    hours, minutes = (int(part) for part in value.split(":"))
    now = time.gmtime()
    return calendar.timegm((now.tm_year, now.tm_mon, now.tm_mday, hours, minutes, 0, 0, 0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=60, help="replication pairs")
    parser.add_argument("--speed", type=float, default=3600.0)
    parser.add_argument("--max-concurrent", type=int, default=24)
    parser.add_argument("--wave-size", type=int, default=50)
    parser.add_argument("--sites-per-twin", type=int, default=50)
    parser.add_argument("--restart-after", type=float, default=5.0)
    parser.add_argument(
        "--kill-after", type=float, default=float("inf"),
        help="kill replica A after this many seconds even if a third has not completed yet",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=5400.0)
    parser.add_argument(
        "--stop-at", type=_utc_time, help="stop watching the campaign at this UTC time (HH:MM)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the schemas and topics")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    text_report = json.dumps(report, indent=2)
    print(text_report)
    if args.json:
        args.json.write_text(text_report)


if __name__ == "__main__":
    main()
