"""The four services of one stack: started in order, restarted, killed on demand, stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from certrotate.distributed.config import (
    DEFAULT_PORTS,
    PACKAGES,
    SERVICES,
    WORKERS,
    DistributedConfig,
)
from certrotate.distributed.process import ServiceProcess, ServiceStartError
from certrotate_shared import event_loop
from certrotate_shared.settings import env_prefix


class Supervisor:
    """Starts, restarts, kills and stops the four services of one distributed stack."""

    def __init__(self, config: DistributedConfig) -> None:
        self.config = config
        self.ports = dict(DEFAULT_PORTS) | dict(config.ports)
        self.services: dict[str, ServiceProcess] = {}

    # --- environment ---

    def environment(self, name: str) -> dict[str, str]:
        """The environment service `name` runs with (contains secrets: never log it)."""
        c = self.config
        base = dict(os.environ if c.base_env is None else c.base_env)
        prefix = env_prefix(name)
        values: dict[str, Any] = {
            "DATABASE_URL": c.database_url,
            "DATABASE_SCHEMA": c.schema(name),
            "TRANSPORT": "kafka",
            "KAFKA_BOOTSTRAP": c.kafka_bootstrap,
            "TOPIC_PREFIX": c.topic_prefix,
            "VAULT_URL": c.vault_url or c.database_url,
            "VAULT_SCHEMA": c.vault_schema,
            "MASTER_KEY": c.master_key,
            "HTTP_HOST": c.host,
            "HTTP_PORT": self.ports[name],
            "LOG_LEVEL": c.log_level,
        }
        # Every service's internal API wants it; the orchestrator sends it.
        values["INTERNAL_TOKEN"] = c.internal_token
        if name == "orchestrator":
            values["ADMIN_TOKEN"] = c.admin_token
            values["CERTIFICATES_URL"] = self._url_of("certificates")
            values["CLIENT_MONITOR_URL"] = self._url_of("client-monitor")
        if c.clock is not None:
            values["CLOCK_SPEED"] = c.clock.speed
            values["CLOCK_REAL_ORIGIN_MS"] = c.clock.real_ms
            values["CLOCK_SIM_ORIGIN_MS"] = c.clock.sim_ms
            if name == "orchestrator":  # on the twin's clock: a rehearsal
                values["REHEARSAL"] = True
        for key, value in c.settings.get(name, {}).items():
            values[key.upper()] = value
        env = base | {f"{prefix}{key}": str(value) for key, value in values.items()}
        # The repository root on the path, so `python -m <service>` works from a checkout too.
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, base.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _url_of(self, name: str) -> str:
        service = self.services.get(name)
        if service is not None and service.url:
            return service.url
        return f"http://{self.config.host}:{self.ports[name]}"

    # --- lifecycle ---

    @property
    def api_url(self) -> str:
        return self._url_of("orchestrator")

    def url(self, name: str) -> str:
        return self._url_of(name)

    async def start(self, timeout: float = 90.0) -> None:
        """Workers in parallel, then the orchestrator; on a failure, stop what started."""
        try:
            await asyncio.gather(*(self.start_service(name, timeout) for name in WORKERS))
            await self.start_service("orchestrator", timeout)
        except BaseException:
            await self.stop(grace=5)
            raise

    async def start_service(self, name: str, timeout: float = 90.0) -> str:
        """Start one service (again); it keeps the port it had."""
        if name not in PACKAGES:
            raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
        service = self.services.get(name)
        env = self.environment(name)
        if service is None:
            service = self.services[name] = ServiceProcess(name, env, self.config)
        service.env = env
        url = await service.start(timeout)
        if url and self.ports[name] == 0:
            self.ports[name] = int(url.rsplit(":", 1)[1])
            service.env = self.environment(name)
        return url

    def kill(self, name: str) -> None:
        """SIGKILL one service (it stays down until `start_service` or `restart`)."""
        self.services[name].kill()

    async def restart(self, name: str, *, kill: bool = True, timeout: float = 90.0) -> str:
        """Crash (SIGKILL) or stop (SIGTERM) one service, then start it again."""
        service = self.services[name]
        if kill:
            service.kill()
            await service.wait()
        else:
            await service.stop()
        return await self.start_service(name, timeout)

    def exited(self) -> list[str]:
        """Services whose process ended without being told to."""
        return [n for n, s in self.services.items() if s.exited_unexpectedly]

    async def stop(self, grace: float = 10.0) -> dict[str, int | None]:
        """SIGTERM each service, the orchestrator first; SIGKILL after `grace` seconds."""
        codes: dict[str, int | None] = {}
        if "orchestrator" in self.services:
            codes["orchestrator"] = await self.services["orchestrator"].stop(grace)
        rest = [n for n in self.services if n != "orchestrator"]
        results = await asyncio.gather(*(self.services[n].stop(grace) for n in rest))
        codes.update(zip(rest, results, strict=True))
        return codes

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_distributed(
    config: DistributedConfig,
    *,
    on_ready: Callable[[Supervisor], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None,
    restart_crashed: bool = True,
    start_timeout: float = 90.0,
) -> int:
    """Run the four services until SIGINT/SIGTERM (or `stop`); 0 after a clean stop, 1 when a
    service cannot be (re)started."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    supervisor = Supervisor(config)
    try:
        try:
            await supervisor.start(start_timeout)
        except ServiceStartError as exc:
            print(f"certrotate: {exc}", file=sys.stderr)
            return 1
        if on_ready is not None:
            result = on_ready(supervisor)
            if asyncio.iscoroutine(result):
                await result
        # Back-off per service: 1 s, doubling to 30 s while it keeps crashing within a minute.
        backoff: dict[str, float] = {}
        restarted_at: dict[str, float] = {}
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            for name in supervisor.exited():
                service = supervisor.services[name]
                code = service.proc.returncode if service.proc else None
                print(f"certrotate: {name} exited (code {code})", file=sys.stderr)
                if not restart_crashed:
                    stop.set()
                    return 1
                if loop.time() - restarted_at.get(name, -1e9) > 60.0:
                    backoff.pop(name, None)
                delay = min(backoff.get(name, 0.5) * 2, 30.0)
                backoff[name] = delay
                await asyncio.sleep(delay)
                restarted_at[name] = loop.time()
                try:
                    await supervisor.start_service(name, start_timeout)
                    print(f"certrotate: {name} restarted", file=sys.stderr)
                except ServiceStartError as exc:
                    print(f"certrotate: {exc}", file=sys.stderr)
        return 0
    finally:
        await supervisor.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


def run(config: DistributedConfig, **kwargs: Any) -> int:
    """Blocking form of `run_distributed` (for the CLI). Its services run on the loop
    CERTROTATE_EVENT_LOOP names (they inherit it); a typo there stops this before they start."""
    return event_loop.run(run_distributed(config, **kwargs))
