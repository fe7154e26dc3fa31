"""Distributed mode: the four services as separate OS processes over Kafka and PostgreSQL.

Used by `certrotate up --mode distributed` and by the end-to-end tests. Each service runs as
`python -m <package>` with its own environment (its own PostgreSQL schema, the shared Kafka
topics, the vault, the master key and the internal token), prints `ready <url>` once it serves,
and logs to `<log_dir>/<service>.log`.

API
---
``DistributedConfig(database_url, master_key, internal_token, admin_token, ...)``
    Everything the four processes need. ``DistributedConfig.from_environment(data_dir, ...)``
    reads CERTROTATE_MASTER_KEY / CERTROTATE_INTERNAL_TOKEN /
    CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN (or makes them once and keeps them in
    ``data_dir/secrets.json``, as the embedded stack does) and CERTROTATE_DATABASE_URL /
    CERTROTATE_KAFKA_BOOTSTRAP / CERTROTATE_TOPIC_PREFIX.

``Supervisor(config)`` (also an async context manager: start on enter, stop on exit)
    ``await start(timeout=...)``   workers first, then the orchestrator (it needs their URLs);
                                   raises ``ServiceStartError`` with the service's log tail.
    ``api_url`` / ``url(name)``    the orchestrator's REST API / any service's HTTP base URL.
    ``start_service(name)``        start one service (again), keeping its port.
    ``services[name]``             its ``ServiceProcess``: ``pid``, ``running``, ``ready``,
                                   ``starts`` (ready starts so far), ``log_path``, ``log_tail()``.
    ``environment(name)``          the exact environment a service is started with.
    ``kill(name)``                 SIGKILL, no clean-up (a crash).
    ``await restart(name, kill=True)``  SIGKILL (or SIGTERM) and start again on the same port.
    ``exited()``                   services whose process ended without being asked to.
    ``await stop(grace=10)``       SIGTERM every service (orchestrator first), SIGKILL after
                                   ``grace`` seconds.

``await run_distributed(config, on_ready=None, stop=None, restart_crashed=True)``
    Start everything, call ``on_ready(supervisor)``, then supervise until SIGINT/SIGTERM (or
    ``stop`` is set): a service that exits on its own is restarted (with back-off). Returns an
    exit code (0 after a clean stop). ``run(config, ...)`` is the blocking form.

Defaults: ports 8080 (orchestrator), 8081 (certificates), 8082 (replication), 8083
(client-monitor); schemas ``<schema_prefix>orchestrator`` etc. and ``vault_schema`` ("vault");
``settings={"orchestrator": {"stale_horizon_days": 30}}`` sets any other service setting.
Ports: 0 picks a free port on the first start; a restart reuses the port the service got, so
the orchestrator's CERTIFICATES_URL / CLIENT_MONITOR_URL and a client's API URL stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from certrotate.stack import ClockSync, stack_secrets

SERVICES: tuple[str, ...] = ("replication", "certificates", "client-monitor", "orchestrator")
PACKAGES: dict[str, str] = {
    "orchestrator": "orchestrator",
    "replication": "replication",
    "certificates": "certificates",
    "client-monitor": "client_monitor",
}
# The orchestrator's defaults point at 8081 (certificates) and 8083 (client-monitor).
DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 8080,
    "certificates": 8081,
    "replication": 8082,
    "client-monitor": 8083,
}
WORKERS: tuple[str, ...] = ("replication", "certificates", "client-monitor")


class ServiceStartError(RuntimeError):
    """A service did not print its ready line in time, or exited first; names its log."""


def env_prefix(service: str) -> str:
    return f"CERTROTATE_{service.upper().replace('-', '_')}_"


@dataclass
class DistributedConfig:
    """What the four processes need; secrets are passed to them in their environment only."""

    database_url: str
    master_key: str = field(repr=False)
    internal_token: str = field(repr=False)
    admin_token: str = field(repr=False)
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "certrotate"
    # Each service keeps its tables in schema <schema_prefix><service> (client_monitor for
    # the client-monitor); a prefix keeps test runs or several stacks apart in one database.
    schema_prefix: str = ""
    vault_schema: str = "vault"
    # The vault's database; the services' database when empty.
    vault_url: str = ""
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    clock: ClockSync | None = None
    log_level: str = "INFO"
    log_dir: Path = Path("var/log")
    # Extra settings per service, by field name: {"orchestrator": {"timer_poll_seconds": 0.2}}.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The environment the processes inherit (default: this process's, so CERTROTATE_*
    # variables an operator set reach the services; what this config sets wins).
    base_env: Mapping[str, str] | None = None
    python: str = sys.executable
    cwd: Path | None = None

    @classmethod
    def from_environment(cls, data_dir: Path, **overrides: Any) -> DistributedConfig:
        """Secrets from the environment or ``data_dir/secrets.json``; infrastructure from
        CERTROTATE_DATABASE_URL, CERTROTATE_KAFKA_BOOTSTRAP and CERTROTATE_TOPIC_PREFIX."""
        keys = stack_secrets(data_dir)
        values: dict[str, Any] = {
            "database_url": os.environ.get(
                "CERTROTATE_DATABASE_URL",
                "postgresql+asyncpg://certrotate@127.0.0.1:55432/certrotate",
            ),
            "kafka_bootstrap": os.environ.get("CERTROTATE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "topic_prefix": os.environ.get("CERTROTATE_TOPIC_PREFIX", "certrotate"),
            "master_key": keys["master_key"],
            "internal_token": keys["internal_token"],
            "admin_token": keys["admin_token"],
            "log_dir": data_dir / "log",
        }
        return cls(**(values | overrides))

    def schema(self, service: str) -> str:
        return f"{self.schema_prefix}{service.replace('-', '_')}"

    def schemas(self) -> list[str]:
        """Every schema this stack writes to (the vault's last)."""
        return [self.schema(name) for name in SERVICES] + [self.vault_schema]


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the supervisor dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ServiceProcess:
    """One service's OS process: start until its ready line, kill, stop."""

    def __init__(self, name: str, env: dict[str, str], config: DistributedConfig) -> None:
        self.name = name
        self.env = env
        self._config = config
        self.log_path = config.log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        # Times this service reported ready; `ready` is False from a start until its ready line.
        self.starts = 0
        self.ready = False
        self._stopping = False
        self._drain: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """The process is alive (it may still be starting: see `ready`)."""
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def exited_unexpectedly(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None and not self._stopping

    async def start(self, timeout: float = 60.0) -> str:
        """Start the process and wait for `ready [url]`; returns the URL (or "")."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1} at {time.ctime()} ---\n".encode())
        self._log.flush()
        self._stopping = False
        self.ready = False
        self.proc = await asyncio.create_subprocess_exec(
            self._config.python,
            "-m",
            PACKAGES[self.name],
            cwd=str(self._config.cwd) if self._config.cwd else None,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        try:
            line = await asyncio.wait_for(self._ready_line(), timeout)
        except TimeoutError:
            self.kill()
            raise ServiceStartError(
                f"{self.name} did not report ready within {timeout:g} s; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            ) from None
        if line is None:
            code = await self.proc.wait()
            raise ServiceStartError(
                f"{self.name} exited with code {code} before it was ready; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )
        self.url = line.removeprefix("ready").strip() or None
        self.starts += 1
        self.ready = True
        self._drain = asyncio.ensure_future(self._drain_stdout())
        return self.url or ""

    async def _ready_line(self) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return None
            line = raw.decode(errors="replace").strip()
            if line.startswith("ready"):
                return line
            self._write_log(raw)

    async def _drain_stdout(self) -> None:
        """Whatever the service prints later goes to its log, so the pipe never fills."""
        assert self.proc is not None and self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self._write_log(raw)

    def _write_log(self, raw: bytes) -> None:
        if self._log is not None and not self._log.closed:
            self._log.write(raw)
            self._log.flush()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (what a crash looks like)."""
        self._stopping = True
        if self.running:
            assert self.proc is not None
            self.proc.kill()

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)
            self._drain = None
        return code

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (None if never started)."""
        if self.proc is None:
            return None
        self._stopping = True
        if self.running:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
        code = await self.wait()
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None and not self._log.closed:
            self._log.close()


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
        if name in ("certificates", "orchestrator"):
            values["INTERNAL_TOKEN"] = c.internal_token
        if name == "orchestrator":
            values["ADMIN_TOKEN"] = c.admin_token
            values["CERTIFICATES_URL"] = self._url_of("certificates")
            values["CLIENT_MONITOR_URL"] = self._url_of("client-monitor")
        if c.clock is not None:
            values["CLOCK_SPEED"] = c.clock.speed
            values["CLOCK_REAL_ORIGIN_MS"] = c.clock.real_ms
            values["CLOCK_SIM_ORIGIN_MS"] = c.clock.sim_ms
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
    """Blocking form of `run_distributed` (for the CLI)."""
    return asyncio.run(run_distributed(config, **kwargs))
