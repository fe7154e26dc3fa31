"""Every service runs the same way: migrate, then relay + consumer + its own background loops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from certrotate_shared import metrics
from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Handler, MessageConsumer
from certrotate_shared.db import is_postgres, make_engine, session_factory
from certrotate_shared.envelope import Message, utcnow
from certrotate_shared.failures import backoff_delay, describe
from certrotate_shared.http import (
    MetricsAccess,
    RequestContext,
    add_health_routes,
    add_metrics_route,
)
from certrotate_shared.migrations import messaging_chain, migrate
from certrotate_shared.outbox_signal import OutboxSignal, notify_channel
from certrotate_shared.relay import OutboxRelay
from certrotate_shared.settings import ServiceSettings, SettingsError, env_prefix
from certrotate_shared.tables import outbox
from certrotate_shared.topics import all_topics, dlq_topic, events_topic
from certrotate_shared.transport.base import Transport
from certrotate_shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

_local_transports: dict[str, Transport] = {}


def make_transport(settings: ServiceSettings) -> Transport:
    """Kafka, or the process-wide durable local log (shared by services in one process)."""
    if settings.transport == "kafka":
        from certrotate_shared.transport.kafka import KafkaTransport, kafka_security

        return KafkaTransport(
            settings.kafka_bootstrap,
            client_id=f"certrotate-{settings.service}",
            security=kafka_security(settings),
        )
    from certrotate_shared.transport.local import LocalTransport

    if settings.local_log_path not in _local_transports:
        _local_transports[settings.local_log_path] = LocalTransport(settings.local_log_path)
    return _local_transports[settings.local_log_path]


@dataclass
class ServiceSpec:
    """What makes a service itself; everything else is the same for all four."""

    name: str
    handlers: Mapping[type[Message], Handler]
    # Topics consumed, given the topic prefix (a worker: its commands; the orchestrator: events).
    topics: Callable[[str], list[str]]
    migrations: str | None = None  # the service's own Alembic script location
    version_table: str = "alembic_version"
    background: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)
    # One transaction per fetched batch: only when every handler's effects are in the database.
    batch_transactions: bool = False
    # The service's HTTP API (health probes and /metrics are added to it); None for no API.
    api: Callable[[ServiceRuntime], FastAPI] | None = None
    # The service's own gauges, read from its database on every scrape of /metrics.
    gauges: Callable[[ServiceRuntime, metrics.Gauges], Awaitable[None]] | None = None
    # metrics_auth=role: (Authorization header, least role) -> None to admit, or (status, why).
    metrics_access: MetricsAccess | None = None


def tls_listener_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's TLS options for this service's listener: none (plain HTTP), TLS, or mTLS."""
    if not settings.http_tls_cert_file:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": settings.http_tls_cert_file,
        "ssl_keyfile": settings.http_tls_key_file,
    }
    if settings.http_tls_client_ca_file:
        options |= {
            "ssl_ca_certs": settings.http_tls_client_ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    return options


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to the process that embeds the API."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        spec: ServiceSpec,
        *,
        transport: Transport | None = None,
        before_commit: Callable[[], Awaitable[None]] | None = None,
        clock: Clock | None = None,
        restart_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec
        if settings.metrics_auth == "role" and spec.metrics_access is None:
            prefix = env_prefix(spec.name)
            raise SettingsError(
                f"{prefix}METRICS_AUTH=role: only the orchestrator has API tokens and roles; "
                f"set internal_token or open for {spec.name}"
            )
        self.schema = settings.schema_name()
        self.transport = transport or make_transport(settings)
        self.signal = OutboxSignal()
        # Tests and the twin may inject a clock; otherwise the settings say (maybe accelerated).
        self.clock = clock or settings.clock()
        self._before_commit = before_commit
        self._tasks: list[asyncio.Task[Any]] = []
        self._owns_transport = transport is None and settings.transport == "kafka"
        self.app: FastAPI | None = None
        self.http_url: str | None = None
        self._http: uvicorn.Server | None = None
        self._stopping = False
        # Loops that stopped on an error and wait to be restarted: name -> the error.
        self._down: dict[str, str] = {}
        self._restart_sleep = restart_sleep or asyncio.sleep
        self._gauge_source = self._read_gauges  # one object, so that stop() removes this one
        self.engine: AsyncEngine
        self.sessions: async_sessionmaker[AsyncSession]
        self.consumer: MessageConsumer
        self.relay: OutboxRelay

    def uow(self) -> UnitOfWork:
        """A new unit of work on this service's database."""
        return UnitOfWork(
            self.sessions,
            topic_prefix=self.settings.topic_prefix,
            signal=self.signal,
            notify_channel=notify_channel(self.schema)
            if is_postgres(self.settings.database_url)
            else None,
        )

    async def start(self, *, serve_http: bool = True) -> None:
        """Migrate, then run relay, consumer, background loops and (optionally) the HTTP API."""
        settings = self.settings
        chains = [messaging_chain()]
        if self.spec.migrations:
            chains.append((self.spec.migrations, self.spec.version_table))
        await migrate(settings.database_url, self.schema, chains)
        self.engine = make_engine(settings.database_url, self.schema)
        self.sessions = session_factory(self.engine)
        if settings.transport == "kafka":
            from certrotate_shared.transport.kafka import ensure_topics, kafka_security

            await ensure_topics(
                settings.kafka_bootstrap,
                all_topics(settings.topic_prefix),
                security=kafka_security(settings),
            )
        await self.transport.start()
        self.relay = OutboxRelay(
            engine=self.engine,
            database_url=settings.database_url,
            schema=self.schema,
            transport=self.transport,
            signal=self.signal,
            service=self.spec.name,
        )
        self.consumer = self._new_consumer()
        self._spawn(self.relay.run(), "relay")
        self._spawn(
            self._keep_running("consumer", lambda: self.consumer.run(), self._renew_consumer),
            "consumer",
        )
        for loop in self.spec.background:
            self._spawn(
                self._keep_running(loop.__name__, functools.partial(loop, self)), loop.__name__
            )
        metrics.add_source(self.spec.name, self._gauge_source)
        if self.spec.api is not None:
            self.app = self.spec.api(self)
            add_health_routes(self.app, service=self.spec.name, readiness=self.readiness)
            add_metrics_route(
                self.app, settings=self.settings, metrics_access=self.spec.metrics_access
            )
            self.app.add_middleware(RequestContext)
            if serve_http:
                await self._serve_http(self.app)
        log.info(
            "%s started (schema %s, %s transport)", self.spec.name, self.schema, settings.transport
        )

    async def _read_gauges(self, gauges: metrics.Gauges) -> None:
        """What every service reports at scrape time: its outbox and its consumer's lag."""
        service = self.spec.name
        async with self.engine.connect() as conn:
            depth, oldest = (
                await conn.execute(select(func.count(), func.min(outbox.c.created_at)))
            ).one()
        gauges.add(
            "certrotate_outbox_messages",
            "Messages committed to the outbox and not yet published",
            depth,
            service=service,
        )
        age = (utcnow() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        gauges.add(
            "certrotate_outbox_oldest_message_age_seconds",
            "Age of the oldest unpublished outbox message (relay lag; 0 when empty)",
            max(age, 0.0),
            service=service,
        )
        for (topic, partition), lag in sorted((await self.consumer.lag()).items()):
            gauges.add(
                "certrotate_consumer_lag_messages",
                "Records on a topic partition this service has not committed yet",
                lag,
                service=service,
                topic=topic,
                partition=str(partition),
            )
        if self.spec.gauges is not None:
            await self.spec.gauges(self, gauges)

    def _new_consumer(self) -> MessageConsumer:
        settings = self.settings
        return MessageConsumer(
            subscription=self.transport.subscribe(
                f"{settings.topic_prefix}.{self.spec.name}", self.spec.topics(settings.topic_prefix)
            ),
            uow_factory=self.uow,
            handlers=self.spec.handlers,
            transport=self.transport,
            dlq_topic=dlq_topic(settings.topic_prefix),
            events_topic=events_topic(settings.topic_prefix),
            service=self.spec.name,
            max_attempts=settings.max_delivery_attempts,
            retry_base_delay=settings.retry_base_delay_s,
            transient_max_delay=settings.transient_retry_max_delay_s,
            before_commit=self._before_commit,
            batch_transactions=self.spec.batch_transactions,
        )

    def _renew_consumer(self) -> None:
        self.consumer = self._new_consumer()

    async def _keep_running(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        before_restart: Callable[[], None] | None = None,
    ) -> None:
        """Run a loop (the consumer, a background loop); when it stops on an error (a failed
        offset commit, a lost broker or database, anything a batch raised), restart it with
        back-off. /readyz fails while it is down."""
        settings = self.settings
        clock = asyncio.get_running_loop()
        failures = 0
        while True:
            started = clock.time()
            try:
                await run()
                return  # stopped on request
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                # A loop that ran a good while before failing starts the back-off afresh.
                failures = (
                    1 if clock.time() - started > settings.consumer_restart_max_s else failures + 1
                )
                self._down[name] = describe(exc)
                delay = backoff_delay(
                    failures,
                    base_s=settings.consumer_restart_base_s,
                    cap_s=settings.consumer_restart_max_s,
                )
                log.error(
                    "%s %s stopped (%s); restarting in %.1f s",
                    self.spec.name,
                    name,
                    self._down[name],
                    delay,
                    exc_info=exc,
                )
            await self._restart_sleep(delay)
            if self._stopping:
                return
            if before_restart is not None:
                before_restart()
            if name != "consumer":  # the consumer is up again once it is consuming
                self._down.pop(name, None)

    async def _serve_http(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            **tls_listener_options(self.settings),
        )
        self._http = _QuietServer(config)
        self._spawn(self._http.serve(), "http")
        while not self._http.started:
            if self._tasks[-1].done():
                raise RuntimeError(f"{self.spec.name} HTTP API could not start")
            await asyncio.sleep(0.02)
        host, port = self._http.servers[0].sockets[0].getsockname()[:2]
        scheme = "https" if self.settings.http_tls_cert_file else "http"
        self.http_url = f"{scheme}://{host}:{port}"

    async def readiness(self) -> list[str]:
        """What keeps this service from being ready: stopped loops, an unreachable database."""
        found = self.problems()
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            found.append(f"database: {type(exc).__name__}")
        return found

    def problems(self) -> list[str]:
        """Loops that have stopped; empty when the service is healthy."""
        problems = [f"{t.get_name()} stopped" for t in self._tasks if t.done()]
        problems += [
            f"{self.spec.name}:{name} down after {error}; restarting"
            for name, error in self._down.items()
            if name != "consumer"
        ]
        if hasattr(self, "consumer") and not self.consumer.serving and not self._stopping:
            error = self._down.get("consumer")
            why = f" after {error}" if error else ""
            problems.append(f"{self.spec.name}:consumer not consuming{why}")
        elif "consumer" in self._down and self.consumer.serving:
            del self._down["consumer"]
        return problems

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.spec.name}:{name}")
        task.add_done_callback(self._crashed)
        self._tasks.append(task)

    def _crashed(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped with an error", task.get_name(), exc_info=task.exception())

    async def stop(self, grace: float = 5.0) -> None:
        """Let the relay and consumer finish what they hold (a cancelled database call can
        leave a SQLite write lock behind), then cancel whatever is still running."""
        self._stopping = True
        metrics.remove_source(self.spec.name, self._gauge_source)
        if self._http is not None:
            self._http.should_exit = True
        if hasattr(self, "relay"):
            self.relay.stop()
            self.consumer.stop()
            loops = [t for t in self._tasks if t.get_name().endswith((":relay", ":consumer"))]
            await asyncio.wait(loops, timeout=grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._owns_transport:
            await self.transport.stop()
        await self.engine.dispose()


def run_service_main(
    name: str,
    settings_cls: type[ServiceSettings],
    build_runtime: Callable[[Any], ServiceRuntime],
) -> None:
    """The body of every `python -m <service>`: load settings (exit 2 with the variables to fix),
    serve, print `ready <url>` once serving, stop cleanly on SIGTERM or SIGINT."""
    import signal
    import sys

    from certrotate_shared.logs import configure_logging
    from certrotate_shared.settings import SettingsError, load_settings
    from certrotate_shared.tracing import configure_tracing, shutdown_tracing

    async def serve() -> None:
        settings = load_settings(settings_cls)
        configure_logging(name, settings.log_level, settings.log_format)
        configure_tracing(name, settings.otlp_endpoint)
        runtime = build_runtime(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start()
        print(f"ready {runtime.http_url or ''}".strip(), flush=True)
        try:
            await stop.wait()
        finally:
            await runtime.stop()
            shutdown_tracing()

    try:
        asyncio.run(serve())
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)


def _aware(when: Any) -> Any:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
