"""The dashboard's pages: each one reads the REST API as the signed-in person and renders it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from orchestrator.entrypoints.dashboard import presenters
from orchestrator.entrypoints.dashboard.history import feeds_of
from orchestrator.entrypoints.dashboard.loopback import Api, ApiError
from orchestrator.entrypoints.dashboard.session import Session, current_session
from orchestrator.entrypoints.dashboard.templating import SECURITY_HEADERS, Page, render
from orchestrator.entrypoints.rotation_clients import relay
from orchestrator.service_layer import at_risk as at_risk_service
from orchestrator.service_layer import rotation_actions as rotations_service
from orchestrator.service_layer.errors import ServiceError

router = APIRouter()

Build = Callable[[Api, Session], Awaitable[Response]]
# Clients at risk listed on the page; the CSV download has them all.
AT_RISK_SHOWN = 50
RISK_STEP = "await_disable_propagation"
STATES = ("running", "paused", "compensating", "completed", "compensated", "failed")


def to_sign_in(request: Request) -> Response:
    if request.headers.get("hx-request"):
        # A poll after the session ended: htmx follows HX-Redirect.
        return Response(
            status_code=401, headers={**SECURITY_HEADERS, "HX-Redirect": "/dashboard/login"}
        )
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/dashboard/login?next={target}", status_code=303)


async def guarded(request: Request, build: Build) -> Response:
    """Signed in, or off to the sign-in page; the API's refusals become an error page."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    async with Api(request, session.token) as api:
        try:
            return await build(api, session)
        except ApiError as exc:
            if request.headers.get("hx-request"):
                return Response(status_code=204, headers=SECURITY_HEADERS)  # keep what is shown
            return render("error.html", exc.status, session=session, error=exc)


def wanted(request: Request, part: str) -> bool:
    """Whether this request renders `part` (the whole page does)."""
    return request.query_params.get("part") in (None, part)


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/dashboard/rotations", status_code=303)


@router.get("/rotations")
async def rotations(
    request: Request, state: str | None = None, cursor: str | None = None
) -> Response:
    async def build(api: Api, session: Session) -> Response:
        chosen = state if state in STATES else None
        page = await api.get("/v1/rotations", state=chosen, cursor=cursor, limit=50)
        context = {"session": session, "page": page, "state": chosen, "states": STATES}
        return Page(request, context).respond("rotations.html")

    return await guarded(request, build)


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    async def build(api: Api, session: Session) -> Response:
        page = await api.get("/v1/campaigns", limit=200)
        return Page(request, {"session": session, "page": page}).respond("campaigns.html")

    return await guarded(request, build)


@router.get("/campaigns/{campaign_id}")
async def campaign(request: Request, campaign_id: str) -> Response:
    async def build(api: Api, session: Session) -> Response:
        view = await api.get(f"/v1/campaigns/{quote(campaign_id, safe='')}")
        context = {"session": session, "campaign": view, "message": None}
        polling = view.get("state") not in ("completed", "cancelled", "aborted", "failed")
        return Page(request, context, polling=polling).respond("campaign.html")

    return await guarded(request, build)


async def rotation_context(
    request: Request, api: Api, session: Session, rotation_id: str
) -> dict[str, Any]:
    """Everything the rotation page shows, read for the regions this request renders."""
    view = await api.get(f"/v1/rotations/{quote(rotation_id, safe='')}")
    context: dict[str, Any] = {
        "session": session, "rotation": view, "message": None,
        "choices": presenters.decision_choices(view.get("pending_decision"), session.may),
        "awaits_approval": presenters.awaits_approval(view),
    }  # fmt: skip
    if wanted(request, "rotation_status"):
        feed = await feeds_of(request.app).read(api, view["id"])
        context["timeline"] = presenters.timeline(view)
        context["compensation"] = presenters.compensation(view)
        context["waits"] = [
            {
                "wait": w,
                "chart": presenters.propagation_chart(w, feed.readings.get(w["watch_id"], [])),
            }
            for w in view.get("propagation") or []
        ]
        context["servers"] = [
            {"server": s, "ports": presenters.port_rows(s)} for s in view.get("servers") or []
        ]
        context["recent"] = list(reversed(feed.recent))
    if wanted(request, "at_risk"):
        context["at_risk"] = await at_risk_list(api, view)
    return context


def risk_wait(view: dict[str, Any]) -> dict[str, Any] | None:
    """The wait whose stragglers the swap would cut off: step 3's (the gate reads it too)."""
    waits = [w for w in view.get("propagation") or [] if w.get("step") == RISK_STEP]
    return waits[-1] if waits else None


async def at_risk_list(api: Api, view: dict[str, Any]) -> dict[str, Any]:
    """The first clients at risk (the CSV has them all), while step 3 waits or as it ended."""
    wait = risk_wait(view)
    if wait is None:
        return {"message": "Step 3 has not started its wait yet, so no client is listed."}
    try:
        data = await api.get(
            f"/v1/rotations/{quote(view['id'], safe='')}/at-risk",
            limit=AT_RISK_SHOWN,
            watch_id=wait["watch_id"],
        )
    except ApiError as exc:
        return {"message": exc.detail, "waiting": wait.get("outcome") == "waiting"}
    clients = data.get("clients", data.get("items")) if isinstance(data, dict) else data
    clients = list(clients or [])
    counted = wait.get("orphan_risk")
    total = counted if isinstance(counted, int) and counted >= len(clients) else len(clients)
    return {
        "total": total, "clients": clients, "message": None,
        "waiting": wait.get("outcome") == "waiting",
    }  # fmt: skip


@router.get("/rotations/{rotation_id}")
async def rotation(request: Request, rotation_id: str) -> Response:
    async def build(api: Api, session: Session) -> Response:
        context = await rotation_context(request, api, session, rotation_id)
        polling = context["rotation"].get("state") not in presenters.TERMINAL
        return Page(request, context, polling=polling).respond("rotation.html")

    return await guarded(request, build)


@router.get("/rotations/{rotation_id}/history")
async def history(request: Request, rotation_id: str, after: int = 0) -> Response:
    async def build(api: Api, session: Session) -> Response:
        path = f"/v1/rotations/{quote(rotation_id, safe='')}"
        view = await api.get(path)
        page = await api.get(f"{path}/events", after=max(after, 0), limit=200)
        return render("history.html", session=session, rotation=view, page=page, after=after)

    return await guarded(request, build)


@router.get("/rotations/{rotation_id}/at-risk.csv")
async def at_risk_csv(request: Request, rotation_id: str) -> Response:
    """Streamed by the service function the API's at-risk route streams (every role may read
    it, as there): a list of a million clients is never held in memory here."""
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    deps = request.app.state.deps
    try:
        state = await rotations_service.get_rotation(rotation_id, db=deps.db)
        wait = state.current_wait(RISK_STEP)
        stream = await at_risk_service.at_risk_clients(
            rotation_id, db=deps.db, client_monitor=deps.client_monitor,
            status="at_risk", fmt="csv",
            watch_id=wait.watch_id if wait else None, cursor=None, limit=None,
        )  # fmt: skip
    except ServiceError as exc:
        error = ApiError(exc.status, exc.title, exc.detail, exc.code)
        return render("error.html", exc.status, session=session, error=error)
    response = relay(stream)
    name = f"rotation-{rotation_id[:36]}-at-risk.csv".replace('"', "")
    response.headers.update(
        {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    )
    return response


@router.get("/decisions")
async def decisions(request: Request) -> Response:
    async def build(api: Api, session: Session) -> Response:
        paused, running, camps = await asyncio.gather(
            api.get("/v1/rotations", state="paused", limit=200),
            api.get("/v1/rotations", state="running", limit=200),
            api.get("/v1/campaigns", limit=200),
        )
        limit = asyncio.Semaphore(8)

        async def view(item: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                return dict(await api.get(f"/v1/rotations/{quote(item['id'], safe='')}"))

        views = await asyncio.gather(*(view(i) for i in paused["items"] + running["items"]))
        waiting = [v for v in views if v.get("pending_decision") or presenters.awaits_approval(v)]
        context = {
            "session": session,
            "rotations": waiting,
            "campaigns": [c for c in camps["items"] if c.get("decision_waiting")],
        }
        return Page(request, context).respond("decisions.html")

    return await guarded(request, build)


@router.get("/servers")
async def servers(request: Request) -> Response:
    async def build(api: Api, session: Session) -> Response:
        inventory = (await api.get("/v1/servers"))["items"]
        latest: dict[str, dict[str, Any]] = {}
        for site in sorted({s["site"] for s in inventory}):
            page = await api.get("/v1/rotations", site=site, limit=1)
            if page["items"]:
                latest[site] = await api.get(
                    f"/v1/rotations/{quote(page['items'][0]['id'], safe='')}"
                )
        rows = []
        for server in inventory:
            rotation_view = latest.get(server["site"])
            progress = next(
                (
                    p
                    for p in (rotation_view or {}).get("servers") or []
                    if p["name"] == server["name"]
                ),
                None,
            )
            rows.append(
                {
                    "server": server,
                    "rotation": rotation_view,
                    "progress": progress,
                    "ports": presenters.port_rows(progress) if progress else [],
                }
            )
        return Page(request, {"session": session, "rows": rows}).respond("servers.html")

    return await guarded(request, build)
