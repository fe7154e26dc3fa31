"""SEPM's replication REST calls for one site."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from sepm_twin.api.responses import SepmHTTPError, json_response
from sepm_twin.site import Site
from sepm_twin.world import World

# The definition: "The geographical location of the replication site. Currently, this always
# displays NA."
SITE_LOCATION = "NA"


def add_replication_routes(app: FastAPI, world: World, site: Site, prefix: str) -> None:
    replication = world.replication

    @app.get(f"{prefix}/replication/is_replicated")
    async def is_replicated() -> Response:
        return json_response(bool(replication.partners_of(site.name)))

    @app.get(f"{prefix}/replication/status")
    async def status() -> Response:
        now = world.sync()
        partners: list[dict[str, Any]] = []
        for partnership in replication.partners_of(site.name):
            partner = world.sites[partnership.other(site.name)]
            partners.append(
                {
                    "id": partner.id,
                    "name": partner.name,
                    "location": SITE_LOCATION,
                    "status_code": partnership.status_at(now),
                    # int64 in the definition, never null: 0 stands for "never".
                    "lastRunTime": partnership.last_run_ms or 0,
                    "lastSuccessfulRunTime": partnership.last_success_ms or 0,
                    "nextRunTime": partnership.next_run_ms,
                }
            )
        return json_response(
            {
                "replicationStatus": {
                    "id": site.id,
                    "siteName": site.name,
                    "siteLocation": SITE_LOCATION,
                    "replicationPartnerStatusList": partners,
                }
            }
        )

    @app.post(f"{prefix}/replication/replicatenow")
    async def replicate_now(request: Request) -> Response:
        params = dict(request.query_params)
        missing = [k for k in ("partnerSiteName", "content", "logs") if k not in params]
        if missing:
            raise SepmHTTPError(400, f"Missing required parameter(s): {', '.join(missing)}")
        for flag in ("content", "logs"):
            if params[flag].lower() != "false":
                raise SepmHTTPError(400, f"Invalid value for {flag}: {params[flag]!r}")
        now = world.sync()
        partnership = replication.find(site.name, params["partnerSiteName"])
        if partnership is None:
            raise SepmHTTPError(
                400, f"{params['partnerSiteName']!r} is not a replication partner of {site.name}"
            )
        replication.start_run(partnership, now)
        return json_response({"code": 0})
