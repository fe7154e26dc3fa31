"""The host agent (`/twin/v1/servers/...`, `/twin/v1/sites/.../replication/partners/...`).

It stands in for what SEPM has no REST call for: certificate backup/install/restore, service
restarts, replication partner delete/re-add. Every POST needs an Idempotency-Key; a repeated
key replays the first answer without acting again. Passwords and keys never reach the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from sepm_twin.api.responses import host_error, json_response
from sepm_twin.api.views import server_view
from sepm_twin.faults import HTTP_KINDS
from sepm_twin.keystore import KeystoreError, read_install_request
from sepm_twin.servers import PORTS, ManagementServer
from sepm_twin.world import HostError, World

Reconcile = Callable[[ManagementServer, set[str]], Awaitable[None]]
Action = Callable[[], Awaitable[tuple[int, Any]]]


class HostAgent:
    def __init__(self, world: World, reconcile: Reconcile) -> None:
        self.world = world
        self.reconcile = reconcile
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(
        self,
        request: Request,
        *,
        operation: str,
        target: str,
        params: dict[str, Any],
        action: Action,
        site: str | None = None,
        server: str | None = None,
    ) -> Response:
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return host_error(400, "IDEMPOTENCY_KEY_REQUIRED", "Send an Idempotency-Key header")
        oplog = self.world.oplog
        async with self._locks.setdefault(key, asyncio.Lock()):
            previous = oplog.previous(key)
            if previous is not None:
                if (previous.operation, previous.target) != (operation, target):
                    return host_error(
                        422,
                        "IDEMPOTENCY_KEY_REUSED",
                        f"Idempotency-Key {key!r} was used for {previous.operation} "
                        f"on {previous.target}",
                    )
                oplog.record(
                    key=key,
                    at=self.world.now_iso(),
                    operation=operation,
                    target=target,
                    params=params,
                    status=previous.status,
                    body=previous.body,
                    replay=True,
                )
                return json_response(previous.body, previous.status)
            status, body, remember = await self._attempt(request, action, site, server)
            oplog.record(
                key=key,
                at=self.world.now_iso(),
                operation=operation,
                target=target,
                params=params,
                status=status,
                body=body,
                remember=remember,
            )
            headers = body.pop("_headers", None) if isinstance(body, dict) else None
            return json_response(body, status, headers)

    async def _attempt(
        self, request: Request, action: Action, site: str | None, server: str | None
    ) -> tuple[int, Any, bool]:
        fault = self.world.faults.fire(
            HTTP_KINDS,
            {"site": site, "server": server, "method": request.method, "path": request.url.path},
        )
        if fault is not None:
            if fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s)
            elif fault.kind == "throttle":
                body = {
                    "errorCode": "TOO_MANY_REQUESTS",
                    "errorMessage": fault.message or "Too many requests",
                    "_headers": {"Retry-After": str(fault.retry_after_s)},
                }
                return 429, body, False
            elif fault.kind == "http_error":
                body = {"errorCode": "INJECTED", "errorMessage": fault.message or "Injected"}
                return fault.status, body, False
        try:
            status, body = await action()
        except HostError as exc:
            return (
                exc.status,
                {"errorCode": exc.code, "errorMessage": exc.message},
                (exc.status < 500),
            )
        except KeystoreError as exc:
            return 422, {"errorCode": exc.code, "errorMessage": exc.message}, True
        return status, body, True

    async def restart(self, server: ManagementServer, service: str) -> dict[str, Any]:
        """Stop, then start; the service's ports close meanwhile and reopen with what it loaded."""
        world = self.world
        world.check_service(server, service)
        affected = set(server.ports_of(service))
        if service == "semwebsrv":
            affected = set(PORTS)
        world.stop_service(server, service)
        await self.reconcile(server, affected)
        try:
            world.start_service(server, service)
        finally:
            await self.reconcile(server, set())
        return {"server": server.name, "service": service, "state": "running", **_served(server)}


def _served(server: ManagementServer) -> dict[str, Any]:
    return {
        "served_fingerprint_sha256": server.client_facing.fingerprint_sha256,
        "served_fingerprints": {p: pair.fingerprint_sha256 for p, pair in server.served.items()},
        "installed_fingerprint_sha256": server.installed.fingerprint_sha256,
    }


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HostError(400, "INVALID_JSON", "The request body is not valid JSON") from exc


def build_host_agent_router(agent: HostAgent) -> APIRouter:
    world = agent.world
    router = APIRouter(prefix="/twin/v1")

    def find(name: str) -> ManagementServer:
        return world.server(name)

    @router.get("/servers/{name}")
    async def get_server(name: str) -> Response:
        try:
            return json_response(server_view(find(name)))
        except HostError as exc:
            return host_error(exc.status, exc.code, exc.message)

    @router.post("/servers/{name}/certificate/backup")
    async def backup(name: str, request: Request) -> Response:
        async def action() -> tuple[int, Any]:
            server = find(name)
            made = world.backup_certificate(server)
            return 200, {"backup_id": made.id, "fingerprint_sha256": made.pair.fingerprint_sha256}

        return await agent.run(
            request,
            operation="certificate.backup",
            target=name,
            params={},
            action=action,
            server=name,
        )

    @router.post("/servers/{name}/certificate/install")
    async def install(name: str, request: Request) -> Response:
        params: dict[str, Any] = {}

        async def action() -> tuple[int, Any]:
            server = find(name)
            body = await _json(request)
            if not isinstance(body, dict):
                raise HostError(400, "INVALID_REQUEST", "The body must be a JSON object")
            params["format"] = body.get("format")
            pair = read_install_request(body)
            params["fingerprint_sha256"] = pair.fingerprint_sha256
            world.sync()
            world.install_certificate(server, pair)
            restart = [s for s in ("semwebsrv", "semapisrv") if s in server.services]
            return 200, {"server": name, "restart_required": restart, **_served(server)}

        return await agent.run(
            request,
            operation="certificate.install",
            target=name,
            params=params,
            action=action,
            server=name,
        )

    @router.post("/servers/{name}/certificate/restore")
    async def restore(name: str, request: Request) -> Response:
        params: dict[str, Any] = {}

        async def action() -> tuple[int, Any]:
            server = find(name)
            body = await _json(request)
            backup_id = body.get("backup_id") if isinstance(body, dict) else None
            if not isinstance(backup_id, str):
                raise HostError(400, "INVALID_REQUEST", "backup_id is required")
            params["backup_id"] = backup_id
            world.sync()
            world.restore_certificate(server, backup_id)
            return 200, {"server": name, "backup_id": backup_id, **_served(server)}

        return await agent.run(
            request,
            operation="certificate.restore",
            target=name,
            params=params,
            action=action,
            server=name,
        )

    @router.post("/servers/{name}/services/{service}/restart")
    async def restart_service(name: str, service: str, request: Request) -> Response:
        async def action() -> tuple[int, Any]:
            return 200, await agent.restart(find(name), service)

        return await agent.run(
            request,
            operation="service.restart",
            target=f"{name}/{service}",
            params={"service": service},
            action=action,
            server=name,
        )

    @router.post("/servers/{name}/restart")
    async def restart_server(name: str, request: Request) -> Response:
        async def action() -> tuple[int, Any]:
            server = find(name)
            for service in list(server.services):
                await agent.restart(server, service)
            return 200, {"server": name, "services": dict(server.services), **_served(server)}

        return await agent.run(
            request, operation="server.restart", target=name, params={}, action=action, server=name
        )

    @router.post("/sites/{site}/replication/partners/{partner}/delete")
    async def delete_partner(site: str, partner: str, request: Request) -> Response:
        async def action() -> tuple[int, Any]:
            world.delete_partner(site, partner)
            return 200, {"site": site, "partner": partner, "deleted": True}

        return await agent.run(
            request,
            operation="replication.partner.delete",
            target=f"{site}/{partner}",
            params={},
            action=action,
            site=site,
        )

    @router.post("/sites/{site}/replication/partners/{partner}/add")
    async def add_partner(site: str, partner: str, request: Request) -> Response:
        async def action() -> tuple[int, Any]:
            world.add_partner(site, partner)
            return 200, {
                "site": site,
                "partner": partner,
                "added": True,
                "database_overwritten": partner,
            }

        return await agent.run(
            request,
            operation="replication.partner.add",
            target=f"{site}/{partner}",
            params={},
            action=action,
            site=site,
        )

    return router
