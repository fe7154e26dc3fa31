"""The twin's control plane (`/twin/v1`): topology, clock, faults, ground truth, op log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from sepm_twin.api.responses import host_error, json_response
from sepm_twin.api.views import (
    client_view,
    convergence_view,
    orphans_view,
    server_list_view,
    topology_view,
)
from sepm_twin.keystore_export import install_body
from sepm_twin.world import HostError, World


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise HostError(400, "INVALID_JSON", "The request body is not valid JSON") from exc


def _number(body: Any, name: str, *, allow_none: bool = False) -> float | None:
    value = body.get(name) if isinstance(body, dict) else None
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise HostError(400, "INVALID_REQUEST", f"{name} must be a non-negative number")
    return float(value)


def build_control_router(world: World, control_url: Callable[[], str]) -> APIRouter:
    router = APIRouter(prefix="/twin/v1")

    @router.get("/topology")
    async def topology() -> Response:
        return json_response(topology_view(world, control_url()))

    @router.get("/clock")
    async def clock() -> Response:
        now = world.sync()
        return json_response(
            {
                "now_ms": now,
                "now": world.now_iso(now),
                "speed": world.clock.speed,
                # How long the last advance of the whole fleet took, in real milliseconds.
                "last_tick_ms": round(world.last_sync_seconds * 1000, 2),
            }
        )

    @router.post("/clock/advance")
    async def advance(request: Request) -> Response:
        seconds = _number(await _body(request), "seconds")
        now = world.advance(seconds or 0.0)
        return json_response({"now_ms": now, "now": world.now_iso(now), "speed": world.clock.speed})

    @router.post("/clock/speed")
    async def speed(request: Request) -> Response:
        value = _number(await _body(request), "speed")
        world.sync()
        world.clock.set_speed(value or 0.0)
        return json_response({"now_ms": world.clock.now_ms(), "speed": world.clock.speed})

    @router.get("/faults")
    async def list_faults() -> Response:
        return json_response(world.faults.list())

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        body = await _body(request)
        try:
            fault = world.faults.add(body)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            return host_error(400, "INVALID_FAULT", errors)
        return json_response(fault.as_dict(), 201)

    @router.delete("/faults")
    async def clear_faults() -> Response:
        world.faults.clear()
        return Response(status_code=204)

    @router.delete("/faults/{fault_id}")
    async def delete_fault(fault_id: str) -> Response:
        if not world.faults.remove(fault_id):
            return host_error(404, "NOT_FOUND", f"No fault {fault_id!r}")
        return Response(status_code=204)

    @router.put("/sites/{site}/rate-limit")
    async def rate_limit(site: str, request: Request) -> Response:
        per_minute = _number(await _body(request), "calls_per_minute", allow_none=True)
        world.site(site).rate_limit.set(per_minute or None)
        return json_response({"site": site, "calls_per_minute": per_minute or None})

    @router.get("/sites/{site}/management-server-list")
    async def management_server_list(site: str) -> Response:
        return json_response(server_list_view(world, world.site(site)))

    @router.post("/sites/{site}/groups/{group_id}/touch-policy")
    async def touch_policy(site: str, group_id: str) -> Response:
        """Change a group's serial without changing its settings (SEPM does this on its own)."""
        target = world.site(site)
        group = target.groups.get(group_id.upper())
        if group is None:
            return host_error(404, "NOT_FOUND", f"No group {group_id!r} in {site}")
        target.touch_policy(group, world.sync())
        return json_response({"group_id": group.id, "policySerialNumber": group.serial})

    @router.get("/ground-truth/orphans")
    async def orphans(site: str | None = None, limit: int | None = None) -> Response:
        world.sync()
        return json_response(orphans_view(world, site, limit))

    @router.get("/ground-truth/convergence")
    async def convergence(site: str | None = None) -> Response:
        world.sync()
        return json_response(convergence_view(world, site))

    @router.get("/clients/{unique_id}")
    async def client(unique_id: str) -> Response:
        world.sync()
        found = world.find_client(unique_id)
        if found is None:
            return host_error(404, "NOT_FOUND", f"No client {unique_id!r}")
        return json_response(client_view(world, *found))

    @router.post("/clients/{unique_id}/communication-update-package")
    async def communication_update_package(unique_id: str, request: Request) -> Response:
        result = world.apply_communication_update_package(unique_id)
        world.oplog.record(
            key=request.headers.get("idempotency-key", ""),
            at=world.now_iso(),
            operation="client.communication_update_package",
            target=unique_id.upper(),
            params={},
            status=200,
            body=result,
            remember=False,
        )
        return json_response(result)

    @router.post("/ca/issue")
    async def issue(request: Request) -> Response:
        body = await _body(request)
        hostnames = body.get("hostnames") if isinstance(body, dict) else None
        fmt = body.get("format", "pem")
        if (
            not isinstance(hostnames, list)
            or not hostnames
            or not all(isinstance(h, str) and h for h in hostnames)
            or fmt not in ("pem", "pkcs12", "jks")
        ):
            return host_error(
                400, "INVALID_REQUEST", "hostnames (non-empty list) and format pem|pkcs12|jks"
            )
        pair = world.issue_certificate(
            hostnames=hostnames,
            common_name=str(body.get("common_name") or hostnames[0]),
            days=int(body.get("days", 730)),
        )
        install = install_body(pair, fmt, str(body.get("password") or "changeit"))
        return json_response(
            {
                "fingerprint_sha256": pair.fingerprint_sha256,
                "certificate_pem": pair.certificate_pem.decode(),
                "install": install,
            }
        )

    @router.get("/operations")
    async def operations() -> Response:
        return json_response(world.oplog.entries)

    return router
