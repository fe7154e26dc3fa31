"""The dashboard's buttons: approve, answer a decision, answer a campaign's decision.

Each one checks origin and CSRF token, then calls the same API route an ITSM tool calls, with
the person's own token: the API decides who may do what, and records who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from orchestrator.entrypoints.dashboard.loopback import Api, ApiError
from orchestrator.entrypoints.dashboard.pages import rotation_context, to_sign_in
from orchestrator.entrypoints.dashboard.session import (
    Session,
    csrf_ok,
    current_session,
    read_form,
)
from orchestrator.entrypoints.dashboard.templating import Page, html, render

router = APIRouter()
Form = dict[str, str]


async def _checked(request: Request) -> tuple[Session, Form] | Response:
    session = await current_session(request)
    if session is None:
        return to_sign_in(request)
    form = await read_form(request)
    if form is None or not csrf_ok(request, session, form):
        return html(
            "<p role='alert'>This form did not come from this dashboard page (origin or CSRF "
            "token missing). Reload the page and try again.</p>",
            403,
        )
    return session, form


def _clean(value: str | None, limit: int = 2000) -> str:
    return (value or "").strip()[:limit]


async def _on_rotation(
    request: Request,
    rotation_id: str,
    path: str,
    body_of: Callable[[Form], dict[str, Any]],
    done: Callable[[dict[str, Any]], str],
) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    rid = quote(rotation_id, safe="")
    body = body_of(form)
    async with Api(request, session.token) as api:
        try:
            await api.post(f"/v1/rotations/{rid}/{path}", body)
            message = {"ok": True, "text": done(body)}
        except ApiError as exc:
            message = {"ok": False, "text": f"{exc.title}: {exc.detail}"}
        htmx = bool(request.headers.get("hx-request"))
        if not htmx and message["ok"]:
            return RedirectResponse(f"/dashboard/rotations/{rid}", status_code=303)
        try:
            context = await rotation_context(request, api, session, rotation_id)
        except ApiError as exc:
            return render("error.html", exc.status, session=session, error=exc)
    context["message"] = message
    page = Page(request, context, path=f"/dashboard/rotations/{rid}")
    if not htmx:
        return page.respond("rotation.html", status=422)
    # htmx swaps 2xx answers only: a refusal is shown in the region, as an alert.
    return html(page.live("rotation_actions"))


def _approval(form: Form) -> dict[str, Any]:
    return {"note": _clean(form.get("note"))}


def _decision(form: Form) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": _clean(form.get("decision"), 20),
        "reason": _clean(form.get("reason")),
        "change_id": _clean(form.get("change_id"), 200) or None,
    }
    days = form.get("extend_days", "").strip()
    if days and body["decision"] == "extend":
        try:
            body["extend_days"] = float(days)
        except ValueError:
            body["extend_days"] = -1.0  # the API refuses it with its own message
    return body


@router.post("/rotations/{rotation_id}/approve")
async def approve(request: Request, rotation_id: str) -> Response:
    return await _on_rotation(request, rotation_id, "approve", _approval, lambda _: "Approved.")


@router.post("/rotations/{rotation_id}/decide")
async def decide(request: Request, rotation_id: str) -> Response:
    return await _on_rotation(
        request, rotation_id, "decide", _decision, lambda b: f"Decision recorded: {b['decision']}."
    )


@router.post("/campaigns/{campaign_id}/approve")
async def approve_campaign(request: Request, campaign_id: str) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    session, form = checked
    cid = quote(campaign_id, safe="")
    body = {"decision": _clean(form.get("decision"), 20), "note": _clean(form.get("note"))}
    async with Api(request, session.token) as api:
        try:
            view = await api.post(f"/v1/campaigns/{cid}/approve", body)
            message = {"ok": True, "text": f"Answered: {body['decision']}."}
        except ApiError as exc:
            message = {"ok": False, "text": f"{exc.title}: {exc.detail}"}
            try:
                view = await api.get(f"/v1/campaigns/{cid}")
            except ApiError as missing:
                return render("error.html", missing.status, session=session, error=missing)
    context = {"session": session, "campaign": view, "message": message}
    page = Page(request, context, path=f"/dashboard/campaigns/{cid}")
    if request.headers.get("hx-request"):
        return html(page.live("campaign_actions"))
    if message["ok"]:
        return RedirectResponse(f"/dashboard/campaigns/{cid}", status_code=303)
    return page.respond("campaign.html", status=422)
