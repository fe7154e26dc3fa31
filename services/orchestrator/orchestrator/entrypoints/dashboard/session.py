"""Signing in to the dashboard with an API token, and keeping its forms safe from other sites.

The token lives in one cookie: HttpOnly (no script can read it), SameSite=Strict (no other
site's page can make the browser send it), Secure over HTTPS, scoped to /dashboard (the REST
API keeps accepting bearer tokens only) and without an expiry (gone when the browser closes).
Every POST must also come from this origin and carry a CSRF token derived from the session's
token, which a page of another origin cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from fastapi import Request

from certrotate_shared.http import ProblemError
from orchestrator.entrypoints.deps import identify, read_sessions, refuse_a_guesser
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal, Role

COOKIE = "certrotate_dashboard"
PATH = "/dashboard"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A dashboard form is a few fields; anything bigger is not one of ours.
MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Session:
    principal: Principal
    token: str = field(repr=False)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def may(self, role: Role) -> bool:
        return self.principal.may(role)


def csrf_token(token: str) -> str:
    """Bound to the session: a keyed hash of its token (not the stored SHA-256 of it)."""
    return hmac.new(token.encode(), b"certrotate dashboard csrf v1", hashlib.sha256).hexdigest()


async def principal_of(request: Request, token: str) -> Principal | None:
    """The same check as the API's bearer tokens (revoked ones are refused), against the same
    limit of failures per address: raises the API's 429 ProblemError for a refused address."""
    deps: Deps = request.app.state.deps
    refuse_a_guesser(request, deps)
    async with read_sessions(request, deps)() as session:
        return await identify(request, deps, session, token)


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        return None
    try:
        principal = await principal_of(request, token)
    except ProblemError:  # too many failures from here: off to the sign-in, which says so
        return None
    return Session(principal, token) if principal else None


def same_origin(request: Request) -> bool:
    """A browser says where a request comes from; refuse what another site sent."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # set by the browser itself, no page can forge it
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:  # not a browser (a script): the CSRF token is what protects
        return True
    expected = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return hmac.compare_digest(origin.rstrip("/"), expected)


async def read_form(request: Request) -> dict[str, str] | None:
    """The URL-encoded fields of a dashboard form; None when it is not one."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = await request.body()  # the app's body limit has already capped it
    if len(body) > MAX_FORM_BYTES:
        return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def csrf_ok(request: Request, session: Session, form: dict[str, str]) -> bool:
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD) or ""
    return same_origin(request) and hmac.compare_digest(sent, session.csrf)


def secure_cookie(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded == "https"
