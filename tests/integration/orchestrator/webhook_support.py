"""An orchestrator for webhook tests, and a sender that signs with the `standardwebhooks`
reference library (not with certrotate's own code).

The certificates stand-in derives each certificate's fingerprint from its bytes, so two
different certificates are told apart (the shared fake answers one fingerprint for all)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from standardwebhooks import Webhook

from certrotate_shared.clock import ManualClock
from certrotate_shared.runtime import ServiceRuntime
from certrotate_shared.transport.local import LocalTransport
from orchestrator.adapters.orm import sagas
from orchestrator.adapters.webhook_tables import webhook_deliveries
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


def fingerprint_of(data_b64: str) -> str:
    return hashlib.sha256(data_b64.encode()).hexdigest()


def certificates_app() -> FastAPI:
    app = FastAPI()
    app.state.bundles = {}
    app.state.held = set()
    app.state.uses = []  # (uploaded bundle, site, names checked) per use of a stored bundle

    @app.post("/internal/v1/bundles")
    async def bundles(request: Request) -> JSONResponse:
        body = await request.json()
        if request.headers.get("x-certrotate-internal-token") != INTERNAL:
            return JSONResponse({"detail": "bad token"}, status_code=401)
        if body.get("password") == "wrong":
            return JSONResponse(
                {"type": "about:blank", "title": "Invalid certificate", "status": 422,
                 "code": "wrong_password", "detail": "the keystore password is wrong"},
                status_code=422, media_type="application/problem+json",
            )  # fmt: skip
        ref = f"bundle-{uuid.uuid4().hex[:8]}"
        app.state.bundles[ref] = body["data_b64"]
        return JSONResponse(
            {"bundle_ref": ref, "fingerprint_sha256": fingerprint_of(body["data_b64"]),
             "subject": "CN=sepm-a1", "not_after": "2027-01-01T00:00:00+00:00",
             "sans": body["hostnames"], "certificate_pem": CERT_PEM},
            status_code=201,
        )  # fmt: skip

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
        data = app.state.bundles[stored]
        app.state.bundles[ref] = data
        app.state.uses.append((stored, body["site"], body["hostnames"]))
        return JSONResponse(
            {"bundle_ref": ref, "fingerprint_sha256": fingerprint_of(data),
             "subject": "CN=sepm-a1", "not_after": "2027-01-01T00:00:00+00:00",
             "sans": body["hostnames"], "certificate_pem": CERT_PEM},
            status_code=201,
        )  # fmt: skip

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


@dataclass
class Hooks:
    runtime: ServiceRuntime
    api: httpx.AsyncClient
    clock: ManualClock
    worker: StandInWorker
    certificates: FastAPI
    settings: dict[str, Any]
    bus: LocalTransport | None = None

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert self.runtime.app is not None
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.runtime.app), base_url="http://orch",
            headers=headers,
        )  # fmt: skip

    async def count(self, table: Any) -> int:
        async with self.runtime.uow() as uow:
            return (await uow.session.execute(select(func.count()).select_from(table))).scalar_one()

    async def rotations(self) -> int:
        return await self.count(sagas)

    async def deliveries(self) -> int:
        return await self.count(webhook_deliveries)

    async def add_source(self, name: str = "pki") -> str:
        response = await self.api.post("/v1/webhooks/sources", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["secret"]["secret"])

    async def restart(self) -> None:
        """Stop the orchestrator and start a new one on the same database, bus and clock."""
        await self.api.aclose()
        await self.runtime.stop()
        self.runtime = _runtime(self.settings, self.certificates, self.clock, self.bus)
        await self.runtime.start(serve_http=False)
        self.api = self.client(ADMIN)

    async def rotation(self, rotation_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/rotations/{rotation_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


def build(
    tmp_path: Any,
    master_key: str,
    *,
    worker: StandInWorker | None = None,
    database: dict[str, Any] | None = None,
    certificates: FastAPI | None = None,
    clock: ManualClock | None = None,
    **overrides: Any,
) -> tuple[ServiceRuntime, dict[str, Any], FastAPI, ManualClock, LocalTransport]:
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/orchestrator.db",
        "transport": "local",
        "local_log_path": str(tmp_path / "bus.db"),
        "vault_url": f"sqlite+aiosqlite:///{tmp_path}/vault.db",
        "master_key": master_key,
        "admin_token": ADMIN,
        "internal_token": INTERNAL,
        "rehearsal": True,
        "timer_poll_seconds": 0.05,
        "callback_poll_seconds": 0.05,
        **(database or {}),
        **overrides,
    }
    bus = LocalTransport(str(tmp_path / "bus.db"))
    certificates = certificates or certificates_app()
    clock = clock or ManualClock()
    return _runtime(settings, certificates, clock, bus), settings, certificates, clock, bus


def _runtime(
    settings: dict[str, Any], certificates: FastAPI, clock: ManualClock, bus: Any
) -> ServiceRuntime:
    return build_runtime(
        Settings(**settings),
        transport=bus,
        clock=clock,
        certificates_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=certificates), base_url="http://certificates"
        ),
        client_monitor_client=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fake_monitor_app()), base_url="http://monitor"
        ),
    )


async def started_hooks(
    tmp_path: Any,
    master_key: str,
    *,
    propagate: bool = True,
    withhold: Callable[[Any], bool] | None = None,
    **overrides: Any,
) -> AsyncIterator[Hooks]:
    """The orchestrator (SQLite, in-process bus) with a stand-in worker answering every command
    except those `withhold` keeps (a worker that never answers them)."""
    runtime, settings, certificates, clock, bus = build(tmp_path, master_key, **overrides)
    worker = StandInWorker(
        bus=bus, propagate=propagate,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/standin.db", transport="local",
        local_log_path=str(tmp_path / "bus.db"), master_key=master_key,
    )  # fmt: skip
    if withhold is not None:
        handlers = dict(worker.runtime.spec.handlers)
        for cls, answer in list(handlers.items()):

            async def maybe(message: Any, ctx: Any, _answer: Any = answer) -> Any:
                if withhold(message):
                    worker.seen.append(message)
                    worker.arrived.set()
                    return None
                return await _answer(message, ctx)

            handlers[cls] = maybe
        worker.runtime.spec.handlers = handlers
    await runtime.start(serve_http=False)
    await worker.runtime.start()
    env = Hooks(runtime, None, clock, worker, certificates, settings, bus)  # type: ignore[arg-type]
    env.api = env.client(ADMIN)
    await env.api.post("/v1/sites", json=site_body(partners=["site-b"]))
    for name in ("sepm-a1", "sepm-a2"):
        await env.api.post("/v1/servers", json=server_body(name))
    try:
        yield env
    finally:
        await env.api.aclose()
        await worker.runtime.stop()
        await env.runtime.stop()


def trigger_payload(data_b64: str = "Q0VSVC1PTkU=", **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "site": "site-a",
        "certificate": {"format": "pkcs12", "data_b64": data_b64, "password": "pfx-pass"},
        "change_id": "CHG0042",
    }
    payload.update(fields)
    return payload


def signed(
    secret: str,
    payload: dict[str, Any] | bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery as a Standard Webhooks sender makes it, with the reference library."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
