"""Every service runs the same way: migrate, then relay + consumer + its own background loops."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from certrotate_shared import metrics
from certrotate_shared.clock import Clock
from certrotate_shared.consumer import Handler, MessageConsumer
from certrotate_shared.db import is_postgres, make_engine, session_factory
from certrotate_shared.envelope import Message
from certrotate_shared.http import (
    MetricsAccess,
    RequestContext,
    add_health_routes,
    add_metrics_route,
)
from certrotate_shared.listener import http_server, listening_url
from certrotate_shared.messaging_gauges import read_messaging_gauges
from certrotate_shared.migrations import messaging_chain, migrate
from certrotate_shared.outbox_signal import OutboxSignal, notify_channel
from certrotate_shared.relay import OutboxRelay
from certrotate_shared.settings import ServiceSettings, SettingsError, env_prefix
from certrotate_shared.supervision import Supervisor
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
        self._loops = Supervisor(spec.name, settings, restart_sleep)
        self._owns_transport = transport is None and settings.transport == "kafka"
        self.app: FastAPI | None = None
        self.http_url: str | None = None
        self._http: uvicorn.Server | None = None
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
        self.engine = make_engine(
            settings.database_url, self.schema, pool_size=settings.database_pool_size
        )
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
        self._loops.spawn(self.relay.run(), "relay")
        self._loops.spawn(
            self._loops.keep_running("consumer", lambda: self.consumer.run(), self._renew_consumer),
            "consumer",
        )
        for loop in self.spec.background:
            self._loops.spawn(
                self._loops.keep_running(loop.__name__, functools.partial(loop, self)),
                loop.__name__,
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
        """What every service reports at scrape time, then what this one adds."""
        await read_messaging_gauges(self.engine, self.consumer, self.spec.name, gauges)
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

    async def _serve_http(self, app: FastAPI) -> None:
        self._http = http_server(app, self.settings)
        serving = self._loops.spawn(self._http.serve(), "http")
        self.http_url = await listening_url(self._http, serving, self.spec.name, self.settings)

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
        problems = self._loops.problems()
        down = self._loops.down
        if hasattr(self, "consumer") and not self.consumer.serving and not self._loops.stopping:
            error = down.get("consumer")
            why = f" after {error}" if error else ""
            problems.append(f"{self.spec.name}:consumer not consuming{why}")
        elif "consumer" in down and self.consumer.serving:
            del down["consumer"]
        return problems

    async def stop(self, grace: float = 5.0) -> None:
        """Let the relay and consumer finish what they hold (a cancelled database call can
        leave a SQLite write lock behind), then cancel whatever is still running."""
        self._loops.stopping = True
        metrics.remove_source(self.spec.name, self._gauge_source)
        if self._http is not None:
            self._http.should_exit = True
        if hasattr(self, "relay"):
            self.relay.stop()
            self.consumer.stop()
            loops = [t for t in self._loops.tasks if t.get_name().endswith((":relay", ":consumer"))]
            await asyncio.wait(loops, timeout=grace)
        await self._loops.cancel_all()
        if self._owns_transport:
            await self.transport.stop()
        await self.engine.dispose()
