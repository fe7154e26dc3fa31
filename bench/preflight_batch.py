"""Benchmark (not a test): the pre-flight of one stored bundle for N sites, as campaign creation
asks it of the certificates service through the orchestrator's CertificatesClient: per site
(8 requests in flight, the orchestrator's bound; main before the batch route) or in one batch
request (the bundle opened once). The certificates service runs in this process on the
embedded stack (SQLite, in-process transport); the bundle is a PKCS#12 file with a wildcard
certificate and its chain, the shape one bundle named by a whole campaign has.

    .venv/bin/python bench/preflight_batch.py [--sites 40] [--rounds 3] [--modes single,batch]

Each round runs every mode once, in turn, so that before and after share the same minutes; the
load average is printed next to every figure. "before" is main at the base commit put first on
PYTHONPATH with `--modes single` (the batch request does not exist there).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from certificates.bootstrap import build_runtime  # noqa: E402
from certificates.settings import Settings  # noqa: E402
from certrotate_shared.secretbox import generate_master_key  # noqa: E402
from orchestrator.adapters.clients import CertificatesClient  # noqa: E402
from tests.support.pki import TestCA, b64  # noqa: E402

TOKEN = "internal-token-for-bench-0123456789"
PASSWORD = "bench-pfx-password"
CONCURRENCY = 8  # orchestrator.service_layer.campaigns.PREFLIGHT_CONCURRENCY


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def uses(sites: int) -> list[dict[str, Any]]:
    return [
        {"site": f"site-{i:03d}", "hostnames": [f"sepm-{i:03d}.corp.example"],
         "min_validity_days": 30}
        for i in range(sites)
    ]  # fmt: skip


async def single(client: CertificatesClient, ref: str, sites: int) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(use: dict[str, Any]) -> None:
        async with gate:
            await client.use_bundle(ref, use)

    await asyncio.gather(*(one(use) for use in uses(sites)))


async def batch(client: CertificatesClient, ref: str, sites: int) -> None:
    copies = await client.use_bundle_for_sites(ref, uses(sites))
    assert len(copies) == sites


MODES = {"single": single, "batch": batch}


async def main(args: argparse.Namespace) -> None:
    modes = args.modes.split(",")
    certificate = TestCA.root().intermediate().issue(["*.corp.example"], days=400)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/certificates.db",
            vault_url=f"sqlite+aiosqlite:///{tmp}/vault.db",
            transport="local",
            local_log_path=f"{tmp}/transport.db",
            master_key=generate_master_key(),
            internal_token=TOKEN,
        )
        runtime = build_runtime(settings)
        await runtime.start(serve_http=False)
        assert runtime.app is not None
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=runtime.app),
            base_url="http://certificates",
            headers={"X-Certrotate-Internal-Token": TOKEN},
            timeout=600,
        )
        client = CertificatesClient(http, TOKEN)
        try:
            stored = await http.post(
                "/internal/v1/bundles",
                json={"site": "", "format": "pkcs12",
                      "data_b64": b64(certificate.pkcs12(PASSWORD)), "password": PASSWORD},
            )  # fmt: skip
            assert stored.status_code == 201, stored.text
            ref = stored.json()["bundle_ref"]
            took: dict[str, list[float]] = {m: [] for m in modes}
            for round_ in range(1, args.rounds + 1):
                for mode in modes:
                    before = load()
                    start = time.perf_counter()
                    await MODES[mode](client, ref, args.sites)
                    seconds = time.perf_counter() - start
                    took[mode].append(seconds)
                    print(
                        f"round {round_} {mode:6} {args.sites} sites: {seconds:7.2f} s "
                        f"({seconds / args.sites * 1000:6.1f} ms a site), load {before}->{load()}",
                        flush=True,
                    )
            for mode, values in took.items():
                print(f"median {mode:6} {statistics.median(values):7.2f} s over {len(values)}")
        finally:
            await http.aclose()
            await runtime.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="single,batch")
    asyncio.run(main(parser.parse_args()))
