"""Internal HTTP APIs (between certrotate's own services): a shared token on every request,
checked before the body is read, and the HTTP client that sends it (over TLS when configured)."""

from __future__ import annotations

import hmac
import json
import ssl
from collections.abc import Collection
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from certrotate_shared import tracing
from certrotate_shared.settings import ServiceSettings

TOKEN_HEADER = "X-Certrotate-Internal-Token"  # noqa: S105 - a header name
# Probes stay open: a load balancer or supervisor checks them without credentials. /metrics
# checks its own access (settings.metrics_auth): Prometheus sends a bearer token, not our header.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_PLACEHOLDER_TOKENS = {"", "changeme", "change-me", "secret", "default", "dev", "test", "token"}


def check_internal_token(value: SecretStr) -> SecretStr:
    """Refuse an empty, placeholder or short internal token (the message names no value)."""
    raw = value.get_secret_value()
    if raw.strip().lower() in _PLACEHOLDER_TOKENS:
        raise ValueError(
            "an internal token is required (the orchestrator sends it); generate one with "
            "`certrotate keygen` and give every service the same value"
        )
    if len(raw) < 16:
        raise ValueError("the internal token must be at least 16 characters")
    return value


class InternalApiSettings(ServiceSettings):
    """Settings of a service whose HTTP API only certrotate's own services call."""

    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Shared secret the orchestrator sends in X-Certrotate-Internal-Token; every route"
            " but /healthz and /readyz refuses a request without it (401). Same value for "
            "every service."
        ),
    )

    @field_validator("internal_token")
    @classmethod
    def _real_token(cls, value: SecretStr) -> SecretStr:
        return check_internal_token(value)


class InternalTokenMiddleware:
    """401 problem+json for any request without the token, before its body is read."""

    def __init__(
        self, app: ASGIApp, *, token: SecretStr, open_paths: Collection[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self._expected = token.get_secret_value().encode()
        self._open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self.app(scope, receive, send)
            return
        sent = next(
            (v for k, v in scope.get("headers", []) if k.decode("latin-1").lower() == _HEADER),
            None,
        )
        if sent is not None and hmac.compare_digest(sent, self._expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": f"send the internal token in the {TOKEN_HEADER} header",
                "code": "internal_token_required",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", TOKEN_HEADER.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_HEADER = TOKEN_HEADER.lower()


def internal_client(
    settings: ServiceSettings, base_url: str, token: SecretStr, **options: Any
) -> httpx.AsyncClient:
    """An HTTP client for another certrotate service: sends the internal token, and over
    https trusts `internal_tls_ca_file` (and presents our client certificate for mTLS)."""
    verify: ssl.SSLContext | bool = True
    if base_url.startswith("https:"):
        verify = ssl.create_default_context(cafile=settings.internal_tls_ca_file or None)
        if settings.internal_tls_client_cert_file:
            verify.load_cert_chain(
                settings.internal_tls_client_cert_file,
                settings.internal_tls_client_key_file or None,
            )
    return httpx.AsyncClient(
        base_url=base_url,
        headers={TOKEN_HEADER: token.get_secret_value()},
        verify=verify,
        event_hooks={"request": [_send_trace_context]},
        **options,
    )


async def _send_trace_context(request: httpx.Request) -> None:
    # The called service's request span joins the caller's trace (a rotation's pre-flight).
    request.headers.update(tracing.current_headers())
