"""Authorization matrix (issue 11, "Suites in CI"): every route of every service's HTTP API
against every role, checked against the minimum role the table below gives it.

A route the table does not list fails the test: a new route must be classified here first.
The apps run embedded (SQLite, in-process transport) like the other API tests; what is checked
is the auth decision only, so a request that then fails validation (4xx) counts as let through.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from certrotate_shared.internal_api import TOKEN_HEADER
from certrotate_shared.runtime import ServiceRuntime
from orchestrator.entrypoints.dashboard.session import COOKIE, csrf_token
from tests.integration.orchestrator.support import ADMIN, INTERNAL

pytestmark = pytest.mark.integration

SERVICES = ("orchestrator", "certificates", "replication", "client-monitor")
ROLES = ("none", "viewer", "operator", "approver", "admin", "internal")
RANKED = ("viewer", "operator", "approver", "admin")
PUBLIC, INTERNAL_ONLY = "public", "internal"

SIGNED = "signed"  # an HMAC signature over the body (Standard Webhooks), no token at all
# The dashboard's pages: a signed-in session cookie (any role), else off to the sign-in page.
# What a role may DO there is the API's decision: each dashboard action calls its /v1 route in
# process with the session's own token, and those routes are checked above by role
# (tests/integration/orchestrator/test_dashboard.py shows a viewer's forged approve refused).
SESSION = "session"
SIGN_IN = "sign-in"  # the token comes in the sign-in form's body: no form, no session (401)

# (method, path) -> minimum role: one of RANKED, PUBLIC (anyone, no credentials), INTERNAL_ONLY
# (the internal token in its header: the services' own APIs) or SIGNED.
# /metrics takes the internal token by default (CERTROTATE_METRICS_AUTH), as a bearer token too.
HEALTH = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): INTERNAL_ONLY,
}
DOCS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")

EXPECTED: dict[str, dict[tuple[str, str], str]] = {
    "orchestrator": {
        **HEALTH,
        **{("GET", path): PUBLIC for path in DOCS},
        ("GET", "/v1/rotations"): "viewer",
        ("POST", "/v1/rotations"): "operator",
        ("GET", "/v1/rotations/{rotation_id}"): "viewer",
        ("GET", "/v1/rotations/{rotation_id}/events"): "viewer",
        ("GET", "/v1/rotations/{rotation_id}/at-risk"): "viewer",
        ("GET", "/v1/rotations/{rotation_id}/accepted-clients"): "viewer",
        ("POST", "/v1/rotations/{rotation_id}/pause"): "operator",
        ("POST", "/v1/rotations/{rotation_id}/resume"): "operator",
        ("POST", "/v1/rotations/{rotation_id}/cancel"): "operator",
        # Proceeding past at-risk clients is checked again inside (approver); retry/compensate
        # decisions are the operator's.
        ("POST", "/v1/rotations/{rotation_id}/decide"): "operator",
        ("POST", "/v1/rotations/{rotation_id}/approve"): "approver",
        ("GET", "/v1/tasks"): "viewer",
        ("POST", "/v1/tasks/{task_id}/confirm"): "operator",
        ("GET", "/v1/campaigns"): "viewer",
        ("POST", "/v1/campaigns"): "operator",
        ("GET", "/v1/campaigns/{campaign_id}"): "viewer",
        ("GET", "/v1/campaigns/{campaign_id}/waves/{wave}"): "viewer",
        ("GET", "/v1/campaigns/{campaign_id}/sites/{site}"): "viewer",
        ("GET", "/v1/campaigns/{campaign_id}/at-risk"): "viewer",
        ("POST", "/v1/campaigns/{campaign_id}/approve"): "approver",
        ("POST", "/v1/campaigns/{campaign_id}/cancel"): "operator",
        ("POST", "/v1/campaigns/{campaign_id}/pause"): "operator",
        ("POST", "/v1/campaigns/{campaign_id}/resume"): "operator",
        # Dead letters hold whole messages: not for viewers.
        ("POST", "/v1/bundles"): "operator",
        ("GET", "/v1/bundles"): "viewer",
        ("GET", "/v1/bundles/{bundle_id}"): "viewer",
        ("DELETE", "/v1/bundles/{bundle_id}"): "operator",
        ("GET", "/v1/dead-letters"): "operator",
        ("POST", "/v1/dead-letters/{dead_letter_id}/replay"): "operator",
        ("GET", "/v1/sites"): "viewer",
        ("POST", "/v1/sites"): "admin",
        ("GET", "/v1/sites/{name}"): "viewer",
        ("PUT", "/v1/sites/{name}"): "admin",
        ("PUT", "/v1/sites/{name}/tags"): "admin",
        ("DELETE", "/v1/sites/{name}"): "admin",
        ("GET", "/v1/servers"): "viewer",
        ("POST", "/v1/servers"): "admin",
        ("GET", "/v1/servers/{name}"): "viewer",
        ("PUT", "/v1/servers/{name}"): "admin",
        ("DELETE", "/v1/servers/{name}"): "admin",
        ("GET", "/v1/tokens"): "admin",
        ("POST", "/v1/tokens"): "admin",
        ("DELETE", "/v1/tokens/{token_id}"): "admin",
        ("GET", "/v1/audit"): "admin",
        ("GET", "/v1/audit/export"): "admin",
        ("GET", "/v1/subscriptions"): "admin",
        ("POST", "/v1/subscriptions"): "admin",
        ("GET", "/v1/subscriptions/{subscription_id}"): "admin",
        ("DELETE", "/v1/subscriptions/{subscription_id}"): "admin",
        ("GET", "/v1/subscriptions/{subscription_id}/deliveries"): "admin",
        ("POST", "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): "admin",
        ("POST", "/v1/subscriptions/{subscription_id}/replies"): SIGNED,
        ("GET", "/v1/webhooks/sources"): "admin",
        ("POST", "/v1/webhooks/sources"): "admin",
        ("GET", "/v1/webhooks/sources/{name}"): "admin",
        ("DELETE", "/v1/webhooks/sources/{name}"): "admin",
        ("POST", "/v1/webhooks/sources/{name}/secrets"): "admin",
        ("DELETE", "/v1/webhooks/sources/{name}/secrets/{secret_id}"): "admin",
        ("POST", "/v1/webhooks/{source}"): SIGNED,
        ("GET", "/dashboard/login"): PUBLIC,
        ("POST", "/dashboard/login"): SIGN_IN,
        ("POST", "/dashboard/logout"): PUBLIC,
        ("GET", "/dashboard/static/{name}"): PUBLIC,
        ("GET", "/dashboard/"): PUBLIC,  # a redirect to the rotations page, which is guarded
        **{
            ("GET", "/dashboard" + page): SESSION
            for page in (
                "/rotations",
                "/rotations/{rotation_id}",
                "/rotations/{rotation_id}/history",
                "/rotations/{rotation_id}/at-risk.csv",
                "/campaigns",
                "/campaigns/{campaign_id}",
                "/decisions",
                "/servers",
            )
        },
        ("POST", "/dashboard/rotations/{rotation_id}/approve"): SESSION,
        ("POST", "/dashboard/rotations/{rotation_id}/decide"): SESSION,
        ("POST", "/dashboard/campaigns/{campaign_id}/approve"): SESSION,
    },
    # No OpenAPI document at all: the bundle API carries keystores and passwords.
    "certificates": {
        **HEALTH,
        ("POST", "/internal/v1/bundles"): INTERNAL_ONLY,
        ("DELETE", "/internal/v1/bundles/{bundle_ref}"): INTERNAL_ONLY,
        ("POST", "/internal/v1/bundles/{bundle_ref}/uses"): INTERNAL_ONLY,
        ("POST", "/internal/v1/bundles/{bundle_ref}/uses/batch"): INTERNAL_ONLY,
        ("POST", "/internal/v1/bundles/holds"): INTERNAL_ONLY,
        ("POST", "/internal/v1/retention/purge"): INTERNAL_ONLY,
    },
    # The workers' documents sit behind the internal token too (test_internal_api.py): only the
    # probes are open on an internal API.
    "replication": {
        **HEALTH,
        **{("GET", path): INTERNAL_ONLY for path in DOCS},
        ("GET", "/v1/operations/{op_key}"): INTERNAL_ONLY,
        ("GET", "/v1/broken-partnerships"): INTERNAL_ONLY,
    },
    "client-monitor": {
        **HEALTH,
        **{("GET", path): INTERNAL_ONLY for path in DOCS},
        ("GET", "/v1/watches/{watch_id}"): INTERNAL_ONLY,
        ("GET", "/v1/watches/{watch_id}/clients"): INTERNAL_ONLY,
        ("POST", "/v1/watches/{watch_id}/accepted-lists"): INTERNAL_ONLY,
        ("GET", "/v1/accepted-lists/{list_id}"): INTERNAL_ONLY,
        ("GET", "/v1/accepted-lists/{list_id}/clients"): INTERNAL_ONLY,
    },
}

# (service, method, path, role) -> why the answer is wrong today; the cell is expected to fail
# (strict: it must be fixed, then removed from here).
KNOWN_WRONG: dict[tuple[str, str, str, str], str] = {}


def _settings(service: str, tmp: Path, master_key: str) -> dict[str, Any]:
    name = service.replace("-", "_")
    settings: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp}/{name}.db",
        "transport": "local",
        "local_log_path": str(tmp / f"{name}-bus.db"),
        "master_key": master_key,
        "internal_token": INTERNAL,
    }
    if service in ("orchestrator", "certificates"):
        settings["vault_url"] = f"sqlite+aiosqlite:///{tmp}/{name}-vault.db"
    if service == "orchestrator":
        # A loopback receiver over http, as the callback tests allow it.
        # The matrix sends hundreds of refused tokens from one address: it checks each auth
        # decision, not the limit on failures (tests/integration/orchestrator/test_tokens.py).
        settings |= {"admin_token": ADMIN, "callback_allowed_networks": ["127.0.0.0/8"],
                     "callback_allow_http": True, "auth_failure_limit": 1_000_000}  # fmt: skip
    return settings


def _build(service: str, tmp: Path, master_key: str) -> ServiceRuntime:
    settings = _settings(service, tmp, master_key)
    if service == "orchestrator":
        from orchestrator.bootstrap import build_runtime as orchestrator
        from orchestrator.settings import Settings as OrchestratorSettings

        return orchestrator(OrchestratorSettings(**settings))
    if service == "certificates":
        from certificates.bootstrap import build_runtime as certificates
        from certificates.settings import Settings as CertificatesSettings

        return certificates(CertificatesSettings(**settings))
    if service == "replication":
        from replication.bootstrap import build_runtime as replication
        from replication.settings import Settings as ReplicationSettings

        return replication(ReplicationSettings(**settings))
    from client_monitor.bootstrap import build_runtime as monitor
    from client_monitor.settings import Settings as MonitorSettings

    return monitor(MonitorSettings(**settings))


def routes_of(app: FastAPI) -> dict[tuple[str, str], Any]:
    """Every (method, path) the app answers, HEAD and OPTIONS aside (Starlette adds them).

    FastAPI >= 0.165 keeps an included router as one opaque entry of `app.routes`; walk into it,
    or the routers' routes (webhooks, campaigns, audit...) would escape the matrix unseen."""
    found: dict[tuple[str, str], Any] = {}

    def walk(routes: Any, prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Route):
                for method in route.methods or ():
                    if method not in ("HEAD", "OPTIONS"):
                        found[(method, prefix + route.path)] = route
            else:
                raise AssertionError(f"a route the matrix cannot read: {route!r}")

    walk(app.routes, "")
    return found


def expected_answer(minimum: str, role: str) -> str:
    """ "allowed", 401 or 403 for a role on a route that needs `minimum`."""
    if minimum == PUBLIC:
        return "allowed"
    if minimum == INTERNAL_ONLY:
        return "allowed" if role == "internal" else "401"
    if minimum in (SIGNED, SIGN_IN):
        return "401"  # neither an API token nor the internal token signs a body
    if minimum == SESSION:  # the internal token is no API token, so no session either
        return "401" if role in ("none", "internal") else "allowed"
    if role in ("none", "internal"):  # the internal token is no API token
        return "401"
    return "allowed" if RANKED.index(role) >= RANKED.index(minimum) else "403"


def verdict(response: httpx.Response, minimum: str) -> str:
    if minimum == SESSION and response.status_code == 303:
        # The dashboard sends whoever has no session to its sign-in page.
        return "401" if response.headers["location"].startswith("/dashboard/login") else "allowed"
    return str(response.status_code) if response.status_code in (401, 403) else "allowed"


def session_request(role: str, tokens: dict[str, str], method: str) -> dict[str, Any]:
    """A browser's request: the role's token as the session cookie, a form with its CSRF token."""
    token = (
        {"none": "", "internal": INTERNAL}[role] if role in ("none", "internal") else tokens[role]
    )
    request: dict[str, Any] = {"headers": {"Cookie": f"{COOKIE}={token}"} if token else {}}
    if method == "POST":
        request["data"] = {"csrf_token": csrf_token(token)}
    return request


@pytest.fixture
async def stack(tmp_path: Path, master_key: str) -> AsyncIterator[dict[str, Any]]:
    """The four services embedded, an API token per role, a webhook source and a subscription
    (so the signed routes reach their signature check instead of a 404)."""
    runtimes = {}
    try:
        for service in SERVICES:
            runtimes[service] = _build(service, tmp_path, master_key)
            await runtimes[service].start(serve_http=False)
        orchestrator = client(runtimes["orchestrator"], {"Authorization": f"Bearer {ADMIN}"})
        async with orchestrator:
            tokens = {"admin": ADMIN}
            for role in ("viewer", "operator", "approver"):
                made = await orchestrator.post("/v1/tokens", json={"name": role, "role": role})
                assert made.status_code == 201, made.text
                tokens[role] = made.json()["token"]
            source = await orchestrator.post("/v1/webhooks/sources", json={"name": "pki"})
            assert source.status_code == 201, source.text
            subscribed = await orchestrator.post(
                "/v1/subscriptions",
                json={"url": "http://127.0.0.1:9/hook", "event_types": ["rotation.completed"],
                      "may_approve": True},
            )  # fmt: skip
            assert subscribed.status_code == 201, subscribed.text
        yield {
            "runtimes": runtimes,
            "tokens": tokens,
            "ids": {"source": "pki", "subscription_id": subscribed.json()["id"]},
        }
    finally:
        for runtime in runtimes.values():
            await runtime.stop()


def client(runtime: ServiceRuntime, headers: dict[str, str]) -> httpx.AsyncClient:
    assert runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app), base_url="http://svc", headers=headers
    )


def credentials(role: str, tokens: dict[str, str]) -> dict[str, str]:
    if role == "none":
        return {}
    if role == "internal":  # offered every way a service could read it
        return {TOKEN_HEADER: INTERNAL, "Authorization": f"Bearer {INTERNAL}"}
    return {"Authorization": f"Bearer {tokens[role]}"}


def concrete(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return re.sub(r"\{[^}]+\}", "matrix-probe", path)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_is_classified_in_the_matrix(stack, service: str) -> None:
    app = stack["runtimes"][service].app
    served = set(routes_of(app))
    table = set(EXPECTED[service])
    assert served - table == set(), f"routes of {service} missing from the authz matrix"
    assert table - served == set(), f"routes in the matrix that {service} no longer serves"
    if app.openapi_url:  # the walk over app.routes sees every documented operation
        documented = {
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            for method in operations
        }
        assert documented <= served


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("service", SERVICES)
async def test_each_role_gets_the_expected_auth_decision_on_every_route(
    stack, service: str, role: str
) -> None:
    runtime = stack["runtimes"][service]
    wrong, still_wrong = [], []
    async with client(runtime, credentials(role, stack["tokens"])) as http:
        for (method, path), _ in sorted(routes_of(runtime.app).items()):
            minimum = EXPECTED[service].get((method, path))
            if minimum is None:
                continue  # test_every_route_is_classified_in_the_matrix fails for it
            # Real ids only where a signature is checked; elsewhere an id nobody has, so that an
            # allowed DELETE removes nothing the later cells need.
            ids = stack["ids"] if minimum == SIGNED else {}
            if minimum == SESSION:
                asked = session_request(role, stack["tokens"], method)
                async with client(runtime, {}) as browser:
                    response = await browser.request(method, concrete(path, ids), **asked)
            else:
                body: dict[str, Any] | None = {} if method in ("POST", "PUT") else None
                response = await http.request(method, concrete(path, ids), json=body)
            got, want = verdict(response, minimum), expected_answer(minimum, role)
            cell = f"{method} {path}: {want} expected, got {response.status_code}"
            known = (service, method, path, role) in KNOWN_WRONG
            if got != want and not known:
                wrong.append(cell)
            elif got == want and known:
                still_wrong.append(f"{method} {path} now answers right: drop it from KNOWN_WRONG")
            if got == "allowed" and response.status_code >= 500:
                wrong.append(f"{method} {path}: a server error ({response.status_code})")
    assert still_wrong == []
    assert wrong == []
