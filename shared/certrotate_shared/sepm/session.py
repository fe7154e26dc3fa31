"""One logged-in session with one SEPM site: tokens, and each call with its retries.

What is retried, and why:
- 429 for every call, honouring Retry-After (capped, with jitter): SEPM refused the request
  before doing anything, so even a POST is safe to send again.
- 401 for every call, once or twice after logging in again: the token had expired, the request
  was not carried out.
- 5xx, timeouts and broken connections only for idempotent calls (GET, PATCH of a setting to an
  absolute value, the login itself), with exponential back-off. A POST such as replicatenow
  may have run already, so its failure is reported, never blindly repeated; only a connection
  that could not even be opened is retried for it.
- TLS verification failures never: trying again cannot make an untrusted certificate trusted.

Tokens: SEPM documents no refresh call for `refreshToken` (and the twin implements none), so the
session logs in again when the token is about to expire or a call answers 401.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from certrotate_shared import metrics
from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import SepmAuthError
from certrotate_shared.sepm.call_errors import IDENTITY, CallSite, status_error, transport_error
from certrotate_shared.sepm.retry import RetryPolicy, Sleep
from certrotate_shared.sepm.tls import sepm_ssl_context

# The connector's logger kept its name when the connector was split into modules, so logging
# configurations that name it keep working.
log = logging.getLogger("certrotate_shared.sepm.client")


@dataclass(frozen=True)
class SepmCredentials:
    """A SEPM system-administrator account; repr never shows the password."""

    username: str
    password: str = field(repr=False)
    domain: str = ""


# Builds the httpx transport of a session from the site's TLS context (False: plain HTTP);
# None leaves httpx to build its own.
TransportFactory = Callable[[ssl.SSLContext | bool], httpx.AsyncBaseTransport | None]


class SepmSession:
    """One SEPM site's REST API over httpx.AsyncClient; logs in lazily."""

    def __init__(
        self,
        api_url: str,
        credentials: SepmCredentials,
        *,
        trusted_certificates_pem: list[str],
        connect_timeout: float,
        read_timeout: float,
        retry: RetryPolicy,
        token_refresh_margin_s: float,
        transport: httpx.AsyncBaseTransport | None,
        sleep: Sleep,
        monotonic: Callable[[], float],
        site: str,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        api_url = api_url.rstrip("/")
        # The site names this session's metrics (a bounded label; the URL is not).
        self._site = site or "unnamed"
        parts = urlsplit(api_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._credentials = credentials
        self._retry = retry
        self._margin = token_refresh_margin_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._connect_timeout = connect_timeout
        self._at = CallSite(
            self.origin, credentials.username, connect_timeout, read_timeout, retry.max_throttled
        )
        self._token: str | None = None
        self._expires_at = 0.0
        self._auth_lock = asyncio.Lock()
        self.logins = 0  # how many times this session logged in (observability, tests)
        verify: ssl.SSLContext | bool = (
            sepm_ssl_context(trusted_certificates_pem) if parts.scheme == "https" else False
        )
        if transport is None and transport_factory is not None:
            transport = transport_factory(verify)  # a service's own sockets, the site's trust
        self.http = httpx.AsyncClient(
            base_url=api_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            verify=verify,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def get_json(
        self, path: str, *, params: dict[str, Any] | None = None, auth: bool = True
    ) -> tuple[Any, str]:
        """A GET's decoded body and the call's name for error messages."""
        response = await self.call("GET", path, params=params, auth=auth)
        where = f"GET {path}"
        return decode_json(response, where), where

    async def close(self) -> None:
        """Log out (best effort) and release connections."""
        token, self._token = self._token, None
        try:
            if token is not None:
                started = self._monotonic()
                # Short: a service shutting down must not hang on a server that went away.
                response = await self.http.post(
                    "/identity/logout",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=min(self._connect_timeout, 2.0),
                )
                self._log("POST", "/identity/logout", response.status_code, started)
        except httpx.HTTPError as exc:
            log.debug("SEPM logout from %s failed: %s", self.origin, type(exc).__name__)
        finally:
            await self.http.aclose()

    # -- tokens ---------------------------------------------------------------------------
    async def _bearer(self) -> str:
        async with self._auth_lock:
            if self._token is None or self._monotonic() >= self._expires_at:
                await self._login()
            assert self._token is not None
            return self._token

    async def _forget(self, token: str) -> None:
        async with self._auth_lock:
            # Another call may have logged in already; only drop the token that failed.
            if self._token == token:
                self._token = None

    async def _login(self) -> None:
        creds = self._credentials
        body = {"username": creds.username, "password": creds.password, "domain": creds.domain}
        response = await self.call("POST", "/identity/authenticate", json=body, auth=False)
        where = "POST /identity/authenticate"
        # Never echo this body (it is a token); decode_json and expect_object name types only.
        answer = answers.expect_object(decode_json(response, where), where)
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise SepmAuthError(
                f"SEPM at {self.origin} answered the login without a token", retryable=True
            )
        try:
            ttl = float(answer.get("tokenExpiration") or 3600)
        except (TypeError, ValueError):
            raise answers.malformed(where, "tokenExpiration is not a number") from None
        # Renew a little before expiry, but never so early that a short-lived token is
        # renewed on every call.
        self._expires_at = self._monotonic() + ttl - min(self._margin, ttl * 0.1)
        self._token = token
        self.logins += 1

    # -- one call, with its retries ---------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        auth: bool = True,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """One call, retried as the module says; an answer of 400 or more raises SepmError."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or path.startswith(IDENTITY)
        safe = idempotent
        policy = self._retry
        failures = throttled = relogins = 0
        while True:
            headers: dict[str, str] = {}
            token = None
            if auth:
                token = await self._bearer()
                headers["Authorization"] = f"Bearer {token}"
            started = self._monotonic()
            try:
                response = await self.http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                self._log(method, path, type(exc).__name__, started)
                error, verified_not_sent = transport_error(self._at, exc, method, path)
                failures += 1
                if (
                    error.retryable
                    and (safe or verified_not_sent)
                    and failures < policy.max_attempts
                ):
                    await self._sleep(policy.backoff(failures))
                    continue
                raise error from None
            self._log(method, path, response.status_code, started)
            status = response.status_code
            if status == 401 and token is not None and relogins < 2:
                relogins += 1
                await self._forget(token)
                continue
            if status == 429:
                throttled += 1
                if throttled <= policy.max_throttled:
                    await self._sleep(policy.retry_after(response, throttled))
                    continue
            elif status >= 500 and safe:
                failures += 1
                if failures < policy.max_attempts:
                    await self._sleep(policy.retry_after(response, failures))
                    continue
            if status >= 400:
                raise status_error(self._at, method, path, response)
            return response

    def _log(self, method: str, path: str, status: int | str, started: float) -> None:
        # Method, path, status and time only: never a body, never the Authorization header.
        elapsed = self._monotonic() - started
        log.debug("SEPM %s %s -> %s in %.1f ms", method, path, status, elapsed * 1000)
        metrics.SEPM_REQUESTS.labels(self._site, method, metrics.sepm_status(status)).inc()
        metrics.SEPM_LATENCY.labels(self._site).observe(max(elapsed, 0.0))


def decode_json(response: httpx.Response, where: str) -> Any:
    """The answer's JSON body; a body that is not JSON is a malformed answer."""
    try:
        # orjson: a page of 1,000 computers decodes several times faster than with json.
        return orjson.loads(response.content)
    except ValueError:
        # A login page or a proxy's error page served with 200: not SEPM's API answering.
        content_type = response.headers.get("content-type", "no content type")
        raise answers.malformed(where, f"not JSON ({content_type})") from None
