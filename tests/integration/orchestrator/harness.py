"""The orchestrator as its tests run it: in process, with the certificates service stood in
(`fake_certificates_app`, which does NOT validate certificates: it accepts any data except the
marker values in support.py) and the client-monitor and workers stood in (support.py); on
SQLite or a PostgreSQL schema, over the in-process bus or a real broker. Every orchestrator
test harness builds on `orchestrator` and `embedded_orchestrator`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select

from certrotate_shared.clock import Clock, ManualClock
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.transport.base import Transport
from certrotate_shared.transport.local import LocalTransport
from orchestrator.bootstrap import build_runtime
from orchestrator.settings import Settings
from tests.integration.orchestrator.support import (
    ADMIN,
    CERT_PEM,
    INTERNAL,
    StandInWorker,
    fake_monitor_app,
    server_body,
    site_body,
)
from tests.unit.orchestrator.saga_driver import NEW_FP


def fingerprint_of(data_b64: str) -> str:
    return hashlib.sha256(data_b64.encode()).hexdigest()


def fake_certificates_app(*, fingerprint_by_content: bool = False) -> FastAPI:
    """`fingerprint_by_content`: each certificate's fingerprint is derived from its bytes, so
    two certificates are told apart (else every one has the same fingerprint)."""
    app = FastAPI()
    app.state.requests = []
    # Pre-flights being answered at once, and the most seen together.
    app.state.in_flight = 0
    app.state.most_in_flight = 0
    app.state.bundles = {}  # bundle_ref -> the certificate's bytes (base64)
    app.state.held = set()
    app.state.uses = []  # (uploaded bundle, site, names checked) per use of a stored bundle

    def described(ref: str, hostnames: list[str]) -> JSONResponse:
        data = app.state.bundles[ref]
        return JSONResponse(
            {"bundle_ref": ref,
             "fingerprint_sha256": fingerprint_of(data) if fingerprint_by_content else NEW_FP,
             "subject": "CN=sepm-a1", "not_after": "2027-01-01T00:00:00+00:00",
             "sans": hostnames, "certificate_pem": CERT_PEM},
            status_code=201,
        )  # fmt: skip

    @app.post("/internal/v1/bundles")
    async def bundles(request: Request) -> JSONResponse:
        app.state.in_flight += 1
        app.state.most_in_flight = max(app.state.most_in_flight, app.state.in_flight)
        try:
            # A few turns of the loop, as a real validation takes: callers that overlap do.
            for _ in range(5):
                await asyncio.sleep(0)
            return await answer(request)
        finally:
            app.state.in_flight -= 1

    async def answer(request: Request) -> JSONResponse:
        body = await request.json()
        app.state.requests.append(
            {"headers": dict(request.headers), "body": {k: v for k, v in body.items()}}
        )
        if request.headers.get("x-certrotate-internal-token") != INTERNAL:
            return JSONResponse({"detail": "bad token"}, status_code=401)
        if body.get("password") == "wrong":
            return JSONResponse(
                {"type": "about:blank", "title": "Invalid certificate", "status": 422,
                 "code": "wrong_password", "detail": "the keystore password is wrong"},
                status_code=422, media_type="application/problem+json",
            )  # fmt: skip
        ref = f"bundle-{len(app.state.requests)}"
        app.state.bundles[ref] = body["data_b64"]
        return described(ref, body["hostnames"])

    @app.post("/internal/v1/bundles/{stored}/uses")
    async def use(stored: str, request: Request) -> JSONResponse:
        body = await request.json()
        if stored not in app.state.bundles:
            return JSONResponse(
                {"title": "Not found", "status": 404, "code": "bundle_not_found",
                 "detail": f"no bundle {stored} in the store"},
                status_code=404, media_type="application/problem+json",
            )  # fmt: skip
        ref = f"bundle-{uuid.uuid4().hex[:8]}"
        app.state.bundles[ref] = app.state.bundles[stored]
        app.state.uses.append((stored, body["site"], body["hostnames"]))
        return described(ref, body["hostnames"])

    @app.post("/internal/v1/bundles/{stored}/uses/batch")
    async def use_for_sites(stored: str, request: Request) -> JSONResponse:
        uses = (await request.json())["uses"]
        answers = []
        for body in uses:
            answer = await use(stored, _Body(body))  # type: ignore[arg-type]
            if answer.status_code != 201:
                return answer
            answers.append({"site": body["site"], **json.loads(bytes(answer.body))})
        return JSONResponse({"uses": answers}, status_code=201)

    @app.post("/internal/v1/bundles/holds")
    async def holds(request: Request) -> JSONResponse:
        refs = (await request.json())["bundle_refs"]
        app.state.held.update(r for r in refs if r in app.state.bundles)
        missing = sorted(r for r in refs if r not in app.state.bundles)
        return JSONResponse({"held": sorted(set(refs) - set(missing)), "missing": missing})

    @app.post("/internal/v1/retention/purge")
    async def purge(request: Request) -> JSONResponse:
        refs = (await request.json())["bundle_refs"]
        gone = [r for r in refs if app.state.bundles.pop(r, None) is not None]
        return JSONResponse({"bundles": len(gone)})

    @app.delete("/internal/v1/bundles/{ref}")
    async def discard(ref: str) -> Response:
        app.state.bundles.pop(ref, None)
        return Response(status_code=204)

    return app


class _Body:
    """A request whose JSON body is already read (one use of a batch)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body

    async def json(self) -> dict[str, Any]:
        return self._body


def orchestrator(
    settings: dict[str, Any],
    *,
    clock: Clock,
    certificates: FastAPI | None = None,
    monitor: FastAPI | None = None,
    bus: Transport | None = None,
) -> ServiceRuntime:
    """The orchestrator, the certificates service and client-monitor stood in (in process)."""
    return build_runtime(
        Settings(**settings),
        transport=bus,
        clock=clock,
        certificates_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=certificates or fake_certificates_app()),
            base_url="http://certificates",
        ),
        client_monitor_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=monitor or fake_monitor_app()),
            base_url="http://monitor",
        ),
    )


def api_client(runtime: ServiceRuntime, token: str | None = ADMIN) -> httpx.AsyncClient:
    """The orchestrator's API in process, with `token` as the bearer (None: no token)."""
    assert runtime.app is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app), base_url="http://orch", headers=headers
    )


@dataclass
class Embedded:
    """The orchestrator on SQLite (or a PostgreSQL schema) and the in-process bus, with a
    stand-in worker answering its commands; `api` is the admin's client."""

    runtime: ServiceRuntime
    api: httpx.AsyncClient
    clock: ManualClock
    certificates: FastAPI
    worker: StandInWorker
    settings: dict[str, Any]
    monitor: FastAPI  # the stand-in client-monitor (its at-risk rows)
    bus: LocalTransport

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        return api_client(self.runtime, token)

    async def restart(self) -> None:
        """Stop the orchestrator and start a new one on the same database, bus and clock."""
        await self.api.aclose()
        await self.runtime.stop()
        self.runtime = orchestrator(
            self.settings, clock=self.clock, certificates=self.certificates,
            monitor=self.monitor, bus=self.bus,
        )  # fmt: skip
        await self.runtime.start(serve_http=False)
        self.api = self.client(ADMIN)

    async def count(self, table: Any) -> int:
        async with self.runtime.uow() as uow:
            return (await uow.session.execute(select(func.count()).select_from(table))).scalar_one()

    async def rotation(self, rotation_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/rotations/{rotation_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


E = TypeVar("E", bound=Embedded)


async def embedded_orchestrator(
    tmp_path: Path,
    master_key: str,
    *,
    kind: type[E],
    certificates: FastAPI | None = None,
    clock: ManualClock | None = None,
    propagate: bool = True,
    withhold: Callable[[Any], bool] | None = None,
    **overrides: Any,
) -> AsyncIterator[E]:
    """An `Embedded` orchestrator with site-a (partner site-b) and its servers sepm-a1, sepm-a2
    registered; the stand-in worker answers every command except those `withhold` keeps (a
    worker that never answers them)."""
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
        "transport": "local",
        "local_log_path": str(tmp_path / "bus.db"),
        "vault_url": f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        "master_key": master_key,
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "timer_poll_seconds": 0.05,
        "rehearsal": True,  # the stand-in sites use the twin driver
        **overrides,
    }
    bus = LocalTransport(str(tmp_path / "bus.db"))
    certificates = certificates or fake_certificates_app()
    monitor = fake_monitor_app()
    clock = clock or ManualClock()
    runtime = orchestrator(
        settings, clock=clock, certificates=certificates, monitor=monitor, bus=bus
    )
    worker = StandInWorker(
        bus=bus, propagate=propagate,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/standin.db", transport="local",
        local_log_path=str(tmp_path / "bus.db"), master_key=master_key,
    )  # fmt: skip
    if withhold is not None:
        worker.withhold(withhold)
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    env = kind(runtime, api_client(runtime), clock, certificates, worker, settings, monitor, bus)
    await env.api.post("/v1/sites", json=site_body(partners=["site-b"]))
    for name in ("sepm-a1", "sepm-a2"):
        await env.api.post("/v1/servers", json=server_body(name))
    try:
        yield env
    finally:
        await env.api.aclose()
        await worker.runtime.stop()
        await env.runtime.stop()
