"""Sign in with an API token, sign out, and the dashboard's own static files."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from certrotate_shared.http import ProblemError
from orchestrator.entrypoints.dashboard.session import (
    COOKIE,
    PATH,
    csrf_ok,
    current_session,
    principal_of,
    read_form,
    same_origin,
    secure_cookie,
)
from orchestrator.entrypoints.dashboard.templating import HERE, SECURITY_HEADERS, html, render

router = APIRouter()

# Every asset is served from here (no CDN): see static/README.md for versions and licences.
STATIC = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _next(value: str | None) -> str:
    """Only a dashboard path: a sign-in link must not send anyone to another site."""
    if value and value.startswith("/dashboard/") and not value.startswith("//"):
        return value if "\\" not in value else "/dashboard/rotations"
    return "/dashboard/rotations"


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return render("login.html", next=_next(next), error=None, session=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request) or {}
    target = _next(form.get("next"))
    if not same_origin(request):
        return render("login.html", 403, next=target, session=None,
                      error="This sign-in did not come from this dashboard's page.")  # fmt: skip
    token = form.get("token", "").strip()
    try:
        principal = await principal_of(request, token) if token else None
    except ProblemError as refused:  # too many failures from this address, here or in the API
        page = render("login.html", refused.status, next=target, session=None,
                      error=f"{refused.detail}.")  # fmt: skip
        page.headers.update(refused.headers or {})
        return page
    if principal is None:
        # Never echo the token back, not even into the form.
        return render("login.html", 401, next=target, session=None,
                      error="Unknown or revoked API token.")  # fmt: skip
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE, token, path=PATH, httponly=True, samesite="strict", secure=secure_cookie(request)
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await current_session(request)
    form = await read_form(request) or {}
    if session is not None and not csrf_ok(request, session, form):
        return html("<p role='alert'>Sign-out refused: reload the page and try again.</p>", 403)
    response = RedirectResponse("/dashboard/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(
        COOKIE, path=PATH, httponly=True, samesite="strict", secure=secure_cookie(request)
    )
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media = STATIC.get(name)
    if media is None:
        return Response(status_code=404)
    return Response(
        (HERE / "static" / name).read_bytes(),
        media_type=media,
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"},
    )
