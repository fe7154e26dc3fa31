"""Test stand-ins around the orchestrator (tests only).

- `fake_monitor_app`: the client-monitor's at-risk list endpoint with two canned clients.
- `StandInWorker`: one runtime consuming every worker's commands topic and answering each
  command with its success event, like healthy workers would.
- The certificates service's stand-in and the orchestrator built with them: harness.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI

from certrotate_shared.consumer import Context, MessageConsumer
from certrotate_shared.envelope import Envelope, Event, Message
from certrotate_shared.messages.certificates import (
    CheckCertificateVerification,
    PurgeCertificateBundle,
    RollbackServerCertificate,
    SetCertificateVerification,
    UpdateServerCertificate,
)
from certrotate_shared.messages.client_monitor import (
    AwaitPolicyPropagation,
    CancelPropagationWatch,
    PolicyPropagated,
)
from certrotate_shared.messages.replication import BreakReplication, InspectSite, RestoreReplication
from certrotate_shared.messages.retention import PurgeRotationRecords, RotationRecordsPurged
from certrotate_shared.runtime import ServiceRuntime, ServiceSpec
from certrotate_shared.settings import ServiceSettings, SettingsConfigDict
from certrotate_shared.topics import commands_topic
from certrotate_shared.transport.base import Transport
from tests.unit.orchestrator.saga_driver import success

ADMIN = "admin-token-for-tests-0123456789"


INTERNAL = "internal-token-for-tests-0123456789"


CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----\n"


M = TypeVar("M", bound=Message)


def fake_monitor_app() -> FastAPI:
    app = FastAPI()

    app.state.rows = [
        {"uniqueId": "C1", "computerName": "laptop-1"},
        {"uniqueId": "C2", "computerName": "laptop-2"},
    ]
    app.state.asked = []

    @app.get("/v1/watches/{watch_id}/clients")
    async def clients(watch_id: str, status: str = "at_risk", format: str = "json") -> Any:
        app.state.asked.append(watch_id)
        rows = app.state.rows
        if format == "csv":
            from fastapi.responses import PlainTextResponse

            text = "uniqueId,computerName\n" + "".join(
                f"{r['uniqueId']},{r['computerName']}\n" for r in rows
            )
            return PlainTextResponse(text, media_type="text/csv")
        if format == "jsonl":
            from fastapi.responses import PlainTextResponse

            lines = "".join(json.dumps(r) + "\n" for r in rows)
            return PlainTextResponse(lines, media_type="application/jsonl")
        return {"watch_id": watch_id, "status": status, "clients": rows}

    @app.post("/v1/watches/{watch_id}/accepted-lists", status_code=201)
    async def accept(watch_id: str) -> Any:
        return {
            "list_id": "al-1", "watch_id": watch_id, "status": "at_risk", "count": 2,
            "sha256": "0" * 64, "created_at": "2026-01-01T00:00:00Z",
        }  # fmt: skip

    @app.get("/v1/accepted-lists/{list_id}/clients")
    async def accepted(list_id: str) -> Any:
        return {"list_id": list_id, "clients": (await clients("w"))["clients"]}

    return app


class StandInSettings(ServiceSettings):
    service = "standin"
    model_config = SettingsConfigDict(env_prefix="CERTROTATE_STANDIN_")


class StandInWorker:
    """Answers every command like a healthy worker; `propagate=False` leaves watches open."""

    def __init__(
        self, *, bus: Transport | None = None, propagate: bool = True, **settings: Any
    ) -> None:
        self.propagate = propagate
        # Clients a completed watch still reports at risk (below a threshold under 100%).
        self.at_risk = 0
        # site -> the partners SEPM reports at inspection (None: "site-b" for every site).
        self.partners: dict[str, list[str]] | None = None
        # Commands it takes and never answers, like a worker stuck in a crash loop.
        self.silent: set[type[Message]] = set()
        # Commands whose handler raises and that have no typed failure here: the real consumer
        # parks them in the DLQ and reports MessageDeadLettered, as for a message it cannot use.
        self.failing: set[type[Message]] = set()
        self.envelopes: list[Envelope] = []
        self.seen: list[Message] = []
        self.arrived = asyncio.Event()

        async def answer(message: Message, ctx: Context) -> Event | None:
            self.seen.append(message)
            self.envelopes.append(ctx.envelope)
            self.arrived.set()
            if type(message) in self.failing:
                raise RuntimeError("KeyError: 'groups' (a bug in the stand-in worker)")
            if isinstance(message, PurgeCertificateBundle | CancelPropagationWatch):
                return None
            if isinstance(message, PurgeRotationRecords):  # as if its own retention were over
                return RotationRecordsPurged(service=message.target_service, counts={"rows": 1})
            if isinstance(message, AwaitPolicyPropagation) and not self.propagate:
                return None
            if type(message) in self.silent:
                return None  # taken, "accepted", and never finished
            if isinstance(message, InspectSite) and self.partners is not None:
                return success(message, partners=self.partners.get(message.site.site, []))
            answer = success(message)
            if isinstance(answer, PolicyPropagated) and self.at_risk:
                return answer.model_copy(update={"orphan_risk": self.at_risk})
            return answer

        handled: list[type[Message]] = [
            InspectSite, BreakReplication, RestoreReplication, SetCertificateVerification,
            CheckCertificateVerification,
            UpdateServerCertificate, RollbackServerCertificate, PurgeCertificateBundle,
            AwaitPolicyPropagation, CancelPropagationWatch, PurgeRotationRecords,
        ]  # fmt: skip
        self.runtime = _ParkingRuntime(
            self,
            StandInSettings(**settings),
            ServiceSpec(
                name="standin",
                handlers={cls: answer for cls in handled},
                topics=lambda prefix: [
                    commands_topic(s, prefix)
                    for s in ("replication", "certificates", "client-monitor")
                ],
            ),
            transport=bus,
        )

    def withhold(self, keep: Callable[[Message], bool]) -> None:
        """Take the commands `keep` picks and never answer them (a worker stuck on them)."""
        handlers = dict(self.runtime.spec.handlers)
        for cls, answer in list(handlers.items()):

            async def maybe(message: Message, ctx: Context, _answer: Any = answer) -> Any:
                if keep(message):
                    self.seen.append(message)
                    self.arrived.set()
                    return None
                return await _answer(message, ctx)

            handlers[cls] = maybe
        self.runtime.spec.handlers = handlers

    async def wait_for(self, kind: type[M], timeout: float = 30.0) -> M:
        async def seen() -> M:
            while True:
                found = [m for m in self.seen if isinstance(m, kind)]
                if found:
                    return found[-1]
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(seen(), timeout)


class _ParkingRuntime(ServiceRuntime):
    """The stand-in's runtime: a failing command is parked rather than answered with its typed
    failure (the consumer's normal path for commands that have one)."""

    def __init__(self, worker: StandInWorker, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker = worker

    def _new_consumer(self) -> MessageConsumer:
        consumer = super()._new_consumer()
        default = consumer._dispatch._failure_for

        def failure_for(message: Message, reason: str) -> Event | None:
            return None if type(message) in self._worker.failing else default(message, reason)

        consumer._dispatch._failure_for = failure_for
        return consumer


def site_body(name: str = "site-a", partners: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "api_url": f"https://{name}:8446/sepm/api/v1",
        "version": "14.3.9000",
        "replication_partners": partners or [],
        "trusted_certificates_pem": [],
        "host_ops": {"driver": "twin", "endpoint": "http://twin"},
        "sepm_credentials": {"username": "admin", "password": "s3cret-sepm-pass", "domain": ""},
    }


def server_body(name: str, site: str = "site-a") -> dict[str, Any]:
    return {
        "name": name,
        "site": site,
        "address": "127.0.0.1",
        "hostnames": [f"{name}.corp"],
        "version": "14.3.9000",
        "ports": {"8443": 18443, "8446": 18446, "443": 10443, "8014": 18014},
    }


def rotation_body(
    site: str = "site-a",
    password: str = "pfx-pass",  # noqa: S107
    **options: Any,
) -> dict[str, Any]:
    return {
        "site": site,
        "certificate": {"format": "pkcs12", "data_b64": "AAAA", "password": password},
        "options": options,
        "change_id": "CHG0001",
    }


async def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> None:
    async def loop() -> None:
        while not await predicate():
            await asyncio.sleep(interval)

    await asyncio.wait_for(loop(), timeout)
