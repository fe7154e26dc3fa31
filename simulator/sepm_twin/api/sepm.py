"""SEPM's REST API (`/sepm/api/v1`) for one site, field for field as SEPM's REST definition has it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sepm_twin.api.computers import ComputerView, parse_order
from sepm_twin.api.guard import guard_request
from sepm_twin.api.paging import int_param, page, page_params, sort_spec
from sepm_twin.api.replication import add_replication_routes
from sepm_twin.api.responses import (
    SepmHTTPError,
    json_bytes_response,
    json_response,
    sepm_error,
)
from sepm_twin.groups import Domain, Group, SettingsError
from sepm_twin.site import Site
from sepm_twin.world import World

PREFIX = "/sepm/api/v1"


def domain_record(domain: Domain) -> dict[str, Any]:
    """GET /domains' item (the vendor's Domain definition)."""
    return {
        "id": domain.id,
        "name": domain.name,
        "description": domain.description,
        "createdTime": domain.created_ms,
        "enable": True,
        "companyName": "",
        "contactInfo": "",
        "administratorCount": 1,
    }


def build_sepm_app(world: World, site: Site) -> FastAPI:
    """A FastAPI app serving one site's SEPM API; mounted on TLS ports and the control plane."""

    async def guard(request: Request) -> None:
        await guard_request(request, world, site)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, dependencies=[Depends(guard)])
    view = ComputerView(site)

    @app.exception_handler(SepmHTTPError)
    async def _sepm_error(_request: Request, exc: SepmHTTPError) -> Response:
        return sepm_error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return sepm_error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return sepm_error(400, "Invalid request")

    def group_or_404(group_id: str) -> Group:
        group = site.groups.get(group_id.upper())
        if group is None:
            raise SepmHTTPError(404, f"The group {group_id} was not found")
        return group

    def login_domain() -> Domain:
        # The scenario's one account logs on to its domain ("" is the default domain).
        wanted = world.scenario.admin.domain
        return (site.find_domain(wanted) if wanted else None) or site.default_domain

    def domain_param(request: Request, name: str) -> Domain:
        """The domain a query names, else the one the administrator logged on to."""
        wanted = request.query_params.get(name)
        if not wanted:
            return login_domain()
        domain = site.find_domain(wanted)
        if domain is None:
            raise SepmHTTPError(400, f"Invalid domain {wanted!r}")
        return domain

    def group_or_410(group_id: str, request: Request) -> Group:
        """Group detail and locations answer 410 for a group they cannot find."""
        group = site.groups.get(group_id.upper())
        wanted = request.query_params.get("domainId")
        if group is None or (wanted and group.domain.id != wanted.upper()):
            raise SepmHTTPError(410, f"The group {group_id} was not found")
        return group

    def bool_param(request: Request, name: str) -> bool:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return False
        if raw.lower() not in ("true", "false"):
            raise SepmHTTPError(400, f"Invalid value for parameter {name}: {raw!r}")
        return raw.lower() == "true"

    async def json_body(request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise SepmHTTPError(400, "The request body is not valid JSON") from exc

    @app.post(f"{PREFIX}/identity/authenticate")
    async def authenticate(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("username"), str):
            raise SepmHTTPError(400, "username and password are required")
        admin = world.scenario.admin
        if (
            body.get("username") != admin.username
            or body.get("password") != admin.password
            or (body.get("domain") or "") != admin.domain
        ):
            raise SepmHTTPError(401, "Invalid username or password")
        session = site.tokens.issue(admin_id=f"{site.id[:16]}{'0' * 16}")
        domain = login_domain()
        return json_response(
            {
                "token": session.token,
                "tokenExpiration": site.tokens.ttl_s,
                "refreshToken": session.refresh_token,
                "adminId": session.admin_id,
                "username": admin.username,
                "domain": domain.name,
                "domainid": domain.id,
                "role": {"bitMask": 8, "title": "System Administrator"},
            }
        )

    @app.post(f"{PREFIX}/identity/logout")
    async def logout(request: Request) -> Response:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        site.tokens.revoke(token)
        return Response(status_code=204)

    @app.get(f"{PREFIX}/version")
    async def version() -> Response:
        return json_response(
            {
                "API_SEQUENCE": site.api_sequence,
                "API_VERSION": site.version,
                "version": site.version_full,
            }
        )

    @app.get(f"{PREFIX}/domains")
    async def domains() -> Response:
        return json_response([domain_record(d) for d in site.domains.values()])

    def group_record(group: Group) -> dict[str, Any]:
        owner = site.policy_owner(group)
        return {
            "id": group.id,
            "name": group.name,
            "description": "",
            "fullPathName": group.full_path,
            "numberOfPhysicalComputers": site.client_count(group.id),
            "numberOfRegisteredUsers": 0,
            # A group that inherits reports its owner's serial and default location.
            "policySerialNumber": owner.serial,
            "policyDate": owner.policy_time_ms,
            "defaultLocationId": owner.locations[0].id,
            "domain": group.domain.summary(),
            "policyInheritanceEnabled": group.inheritance,
        }

    @app.get(f"{PREFIX}/groups")
    async def groups(request: Request) -> Response:
        index, size = page_params(request.query_params, 25)
        domain = domain_param(request, "domain")
        wanted = request.query_params.get("fullPathName")
        matching = [
            g
            for g in site.sorted_groups(domain)
            if not wanted or g.full_path.lower() == wanted.replace("/", "\\").lower()
        ]
        chunk = matching[(index - 1) * size : index * size]
        return json_response(
            page(
                [group_record(g) for g in chunk],
                index=index,
                size=size,
                total=len(matching),
                sort=sort_spec("fullPathName", False),
            )
        )

    @app.get(f"{PREFIX}/groups/{{group_id}}")
    async def group_detail(group_id: str, request: Request) -> Response:
        return json_response(group_record(group_or_410(group_id, request)))

    @app.get(f"{PREFIX}/groups/{{group_id}}/locations")
    async def locations(group_id: str, request: Request) -> Response:
        group = group_or_410(group_id, request)
        has_name = bool_param(request, "hasName")
        # Strings, not objects: "<name>:api/v1/locations/<id>" with hasName, else the ids.
        return json_response(
            [
                f"{loc.name}:api/v1/locations/{loc.id}" if has_name else loc.id
                for loc in site.policy_owner(group).locations
            ]
        )

    @app.get(f"{PREFIX}/groups/{{group_id}}/locations/{{location_id}}/settings")
    async def get_settings(group_id: str, location_id: str) -> Response:
        group = group_or_404(group_id)
        location = site.policy_owner(group).location(location_id.upper())
        if location is None:
            raise SepmHTTPError(404, f"The location {location_id} was not found")
        return json_response({"configuration": location.settings})

    @app.patch(f"{PREFIX}/groups/{{group_id}}/locations/{{location_id}}/settings")
    async def patch_settings(group_id: str, location_id: str, request: Request) -> Response:
        group = group_or_404(group_id)
        owner = site.policy_owner(group)
        if owner.location(location_id.upper()) is None:
            raise SepmHTTPError(404, f"The location {location_id} was not found")
        if owner is not group and world.scenario.inherited_settings_patch == "refuse":
            raise SepmHTTPError(
                400,
                f"The group {group.full_path} inherits its policy from {owner.full_path}; "
                "change the settings of that group",
            )
        body = await json_body(request)
        now = world.sync()
        try:
            settings = site.patch_location(group, location_id.upper(), body, now)
        except SettingsError as exc:
            raise SepmHTTPError(400, f"Invalid settings: {exc}") from exc
        return json_response({"configuration": settings})

    def computers_page(request: Request, group_index: int | None) -> Response:
        params = request.query_params
        index, size = page_params(params, 20)
        prop, descending = parse_order(params.get("sort"), params.get("order"))
        domain = domain_param(request, "domain")
        selected = view.select(
            group_index=group_index,
            domain=domain,
            last_update=int_param(params, "lastUpdate", 0),
            computer_name=params.get("computerName"),
            descending=descending,
        )
        chunk = selected[(index - 1) * size : index * size]
        return json_bytes_response(
            view.render_page(
                chunk,
                index=index,
                size=size,
                total=len(selected),
                sort=sort_spec(prop, descending),
            )
        )

    @app.get(f"{PREFIX}/computers")
    async def computers(request: Request) -> Response:
        return computers_page(request, None)

    @app.get(f"{PREFIX}/groups/{{group_id}}/computers")
    async def group_computers(group_id: str, request: Request) -> Response:
        group = group_or_404(group_id)
        group_index = site.fleet.group_index.get(group.id)
        if group_index is None:
            index, size = page_params(request.query_params, 20)
            return json_response(
                page([], index=index, size=size, total=0, sort=sort_spec("COMPUTER_NAME", False))
            )
        return computers_page(request, group_index)

    @app.get(f"{PREFIX}/stats/client/onlinestatus")
    async def online_status() -> Response:
        fleet = site.fleet
        online = int(fleet.online(slice(None)).sum())
        return json_response(
            {
                "lastUpdated": fleet.now_ms,
                "clientCountStatsList": [
                    {"status": "ONLINE", "clientsCount": online},
                    {"status": "OFFLINE", "clientsCount": fleet.size - online},
                ],
            }
        )

    add_replication_routes(app, world, site, PREFIX)
    return app
