"""The host agent's machinery: idempotent execution of host operations, and restarts.

Every POST needs an Idempotency-Key; a repeated key replays the first answer without acting
again, and is written to the operation log as a replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response

from sepm_twin.api.responses import host_error, json_response
from sepm_twin.faults import HTTP_KINDS
from sepm_twin.keystore import KeystoreError
from sepm_twin.servers import ManagementServer
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
        world.stop_service(server, service)
        await self.reconcile(server, affected)
        try:
            world.start_service(server, service)
        finally:
            await self.reconcile(server, set())
        return {"server": server.name, "service": service, "state": "running", **served(server)}


def served(server: ManagementServer) -> dict[str, Any]:
    return {
        "served_fingerprint_sha256": server.client_facing.fingerprint_sha256,
        "served_fingerprints": {p: pair.fingerprint_sha256 for p, pair in server.served.items()},
        # The Tomcat keystore's, kept under its old name for drivers that read it.
        "installed_fingerprint_sha256": server.stores["tomcat"].fingerprint_sha256,
        "stores": {name: pair.fingerprint_sha256 for name, pair in server.stores.items()},
        "recorded_fingerprint_sha256": server.record.fingerprint_sha256,
    }
