"""A real certrotate for the CLI to talk to: the twin and the embedded stack (SQLite, in-process
transport) running in a background event loop, with the REST API on a free local port."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from certrotate.stack import ClockSync, EmbeddedStack, start_embedded
from certrotate.twin_inventory import register_twin
from sepm_twin import Twin
from tests.support.fleets import partner_fleet

T = TypeVar("T")

ADMIN = {"username": "svc", "password": "pw-cli-test-123"}
SCENARIO = partner_fleet(ADMIN, clients=(120, 30), away_site_clients=50)


class BackgroundLoop:
    """An event loop in a thread, so the synchronous CLI can call a live API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class LiveCertrotate:
    api_url: str
    admin_token_file: Path
    twin_url: str
    twin: Twin
    stack: EmbeddedStack
    background: BackgroundLoop
    workdir: Path

    def twin_get(self, path: str) -> Any:
        return httpx.get(self.twin_url + path, timeout=30).json()

    def issue_bundle(
        self,
        site: str,
        *,
        fmt: str = "pkcs12",
        password: str = "s3cret-pass",  # noqa: S107
    ) -> Path:
        """A new certificate for every hostname of the site, from the twin's corporate CA."""
        topology = self.twin_get("/twin/v1/topology")
        servers = next(s for s in topology["sites"] if s["name"] == site)["servers"]
        hostnames = sorted({h for s in servers for h in s["hostnames"]})
        issued = httpx.post(
            self.twin_url + "/twin/v1/ca/issue",
            json={"hostnames": hostnames, "format": fmt, "password": password},
            timeout=30,
        ).json()
        install = issued["install"]
        suffix = {"pkcs12": ".p12", "jks": ".jks", "pem": ".pem"}[fmt]
        path = self.workdir / f"{site}-{time.monotonic_ns()}{suffix}"
        data = base64.b64decode(install["data_b64"])
        if fmt == "pem":
            data += base64.b64decode(install["key_b64"])
        path.write_bytes(data)
        return path

    def secret_file(self, name: str, value: str) -> Path:
        path = self.workdir / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCertrotate]:
    workdir = tmp_path_factory.mktemp("cli")
    background = BackgroundLoop()

    async def start() -> tuple[Twin, EmbeddedStack]:
        twin = await Twin.start(SCENARIO)
        async with httpx.AsyncClient(base_url=twin.base_url) as control:
            clock = (await control.get("/twin/v1/clock")).json()
        sync = ClockSync(
            speed=clock["speed"], real_ms=int(time.time() * 1000), sim_ms=clock["now_ms"]
        )
        stack = await start_embedded(workdir / "data", api_port=0, clock=sync)
        headers = {"Authorization": f"Bearer {stack.admin_token}"}
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as api:
            await register_twin(
                api, twin.topology(), username=ADMIN["username"], password=ADMIN["password"]
            )
        return twin, stack

    twin, stack = background.run(start())
    # The embedded stack's own secrets file: what a user of `certrotate up` points the CLI at.
    token_file = workdir / "data" / "secrets.json"
    env = LiveCertrotate(
        api_url=stack.api_url, admin_token_file=token_file, twin_url=twin.base_url, twin=twin,
        stack=stack, background=background, workdir=workdir,
    )  # fmt: skip
    try:
        yield env
    finally:

        async def stop() -> None:
            await stack.stop()
            await twin.stop()

        background.run(stop())
        background.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
