"""The host agent (`/twin/v1/servers/...`, `/twin/v1/sites/.../replication/partners/...`).

It stands in for what SEPM has no REST call for: certificate backup/install/restore (and a
backup's deletion), service restarts, replication partner delete/re-add. Passwords and keys never reach the log: only the
format and the resulting fingerprint are recorded.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from sepm_twin.api.agent import HostAgent, served
from sepm_twin.api.responses import host_error, json_response
from sepm_twin.api.views import backup_view, server_view
from sepm_twin.keystore import read_install_request
from sepm_twin.servers import STORE_OF_PORT, STORES, ManagementServer
from sepm_twin.world import ALL_PARTS, HostError


def restart_required(server: ManagementServer, parts: tuple[str, ...]) -> list[str]:
    """The services that must restart to serve what was written (the record needs none)."""
    return [
        service
        for service in server.services
        if any(STORE_OF_PORT.get(port) in parts for port in server.ports_of(service))
    ]


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
            made = world.backup_certificate(find(name))
            return 200, backup_view(made)

        return await agent.run(
            request,
            operation="certificate.backup",
            target=name,
            params={},
            action=action,
            server=name,
        )

    @router.post("/servers/{name}/certificate/backups/{backup_id}/delete")
    async def delete_backup(name: str, backup_id: str, request: Request) -> Response:
        """A backup whose files are already gone answers deleted: false (nothing to do)."""

        async def action() -> tuple[int, Any]:
            deleted = world.delete_backup(find(name), backup_id)
            return 200, {"server": name, "backup_id": backup_id, "deleted": deleted}

        return await agent.run(
            request,
            operation="certificate.backup.delete",
            target=name,
            params={"backup_id": backup_id},
            action=action,
            server=name,
        )

    async def write_certificate(
        name: str, request: Request, operation: str, parts: tuple[str, ...]
    ) -> Response:
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
            world.install_certificate(server, pair, parts)
            return 200, {
                "server": name,
                "updated": list(parts),
                "restart_required": restart_required(server, parts),
                **served(server),
            }

        return await agent.run(
            request, operation=operation, target=name, params=params, action=action, server=name
        )

    @router.post("/servers/{name}/certificate/install")
    async def install(name: str, request: Request) -> Response:
        """Both stores and SEPM's record, as the console's Update Server Certificate does."""
        return await write_certificate(name, request, "certificate.install", ALL_PARTS)

    @router.post("/servers/{name}/certificate/stores/{store}")
    async def install_store(name: str, store: str, request: Request) -> Response:
        """One store only: tomcat (keystore.jks) or apache (server.crt and server.key)."""
        if store not in STORES:
            return host_error(
                404, "UNKNOWN_STORE", f"Unknown store {store!r}; use tomcat or apache"
            )
        return await write_certificate(name, request, f"certificate.store.{store}", (store,))

    @router.post("/servers/{name}/certificate/record")
    async def record(name: str, request: Request) -> Response:
        """SEPM's record of the certificate, which the management server list hands out."""
        return await write_certificate(name, request, "certificate.record", ("record",))

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
            return 200, {"server": name, "backup_id": backup_id, **served(server)}

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
            return 200, {"server": name, "services": dict(server.services), **served(server)}

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
