"""The httpx connector to SEPM's REST API: tokens, paging, 429 back-off, timeouts, and retries
of idempotent calls only. Implements `SepmApi` for real servers and for the twin.

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
connector logs in again when the token is about to expire or a call answers 401.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from certrotate_shared import metrics, site_directory
from certrotate_shared.messages.common import SiteTarget
from certrotate_shared.sepm import answers
from certrotate_shared.sepm.api import (
    PageReader,
    PageT,
    SepmAuthError,
    SepmDomain,
    SepmError,
    SepmLocation,
)
from certrotate_shared.sepm.tls import sepm_ssl_context
from certrotate_shared.vault import SecretNotFoundError, Vault

log = logging.getLogger(__name__)

_IDENTITY = "/identity/"
# Answers that asking again may change; everything else 4xx is final.
_RETRYABLE_STATUS = {408, 425, 429}


@dataclass(frozen=True)
class SepmCredentials:
    """A SEPM system-administrator account; repr never shows the password."""

    username: str
    password: str = field(repr=False)
    domain: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the connector tries before it reports a failure."""

    max_attempts: int = 5  # per idempotent call, for 5xx, timeouts and broken connections
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_throttled: int = 20  # 429 answers tolerated per call
    retry_after_cap_s: float = 60.0
    jitter: float = 0.25  # up to this fraction is added to every wait


Sleep = Callable[[float], Awaitable[None]]


class SepmClient:
    """One SEPM site's REST API over httpx.AsyncClient; logs in lazily."""

    def __init__(
        self,
        api_url: str,
        credentials: SepmCredentials,
        *,
        trusted_certificates_pem: list[str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        token_refresh_margin_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        site: str = "",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        # The site names this client's metrics (a bounded label; the URL is not).
        self._site = site or "unnamed"
        parts = urlsplit(self.api_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._credentials = credentials
        self._retry = retry or RetryPolicy()
        self._margin = token_refresh_margin_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._token: str | None = None
        self._expires_at = 0.0
        self._auth_lock = asyncio.Lock()
        self.logins = 0  # how many times this client logged in (observability, tests)
        verify: ssl.SSLContext | bool = (
            sepm_ssl_context(list(trusted_certificates_pem or []))
            if parts.scheme == "https"
            else False
        )
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            verify=verify,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    # -- SepmApi --------------------------------------------------------------------------
    async def version(self) -> dict[str, Any]:
        """GET /version: API_SEQUENCE, API_VERSION, version."""
        return answers.expect_object(*await self._get_json("/version", auth=False))

    async def domains(self) -> list[SepmDomain]:
        """GET /domains: every domain the account can see."""
        return answers.domains(*await self._get_json("/domains"))

    async def iter_groups(
        self, *, domain_id: str | None = None, page_size: int = 25
    ) -> AsyncIterator[dict[str, Any]]:
        """Every group of a domain (GET /groups, paged); each has a string `id`."""
        params = {"domain": domain_id} if domain_id else {}
        async for page in self._pages("/groups", params, page_size, key="id"):
            if domain_id:
                answers.check_domain(page, domain_id, "GET /groups", _group_domain)
            for group in page:
                yield group

    async def group_locations(
        self, group_id: str, *, domain_id: str | None = None
    ) -> list[SepmLocation]:
        """GET /groups/{id}/locations?hasName=true: names and ids of the locations."""
        params: dict[str, Any] = {"hasName": "true"}
        if domain_id:
            params["domainId"] = domain_id
        return answers.locations(
            *await self._get_json(f"/groups/{group_id}/locations", params=params)
        )

    async def get_location_settings(self, group_id: str, location_id: str) -> dict[str, Any]:
        """GET /groups/{g}/locations/{l}/settings."""
        path = f"/groups/{group_id}/locations/{location_id}/settings"
        return answers.expect_object(*await self._get_json(path))

    async def patch_location_settings(
        self, group_id: str, location_id: str, body: dict[str, Any]
    ) -> None:
        """PATCH /groups/{g}/locations/{l}/settings (absolute values, so safe to repeat)."""
        path = f"/groups/{group_id}/locations/{location_id}/settings"
        await self._call("PATCH", path, json=body, idempotent=True)

    async def iter_computer_pages(
        self, *, last_update_ms: int = 0, page_size: int = 1000, domain_id: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """GET /computers page by page from pageIndex 1 until lastPage, filtered by lastUpdate."""
        params: dict[str, Any] = {"lastUpdate": last_update_ms}
        if domain_id:
            params["domain"] = domain_id
        async for page in self._pages("/computers", params, page_size, key="uniqueId"):
            if domain_id:
                answers.check_domain(page, domain_id, "GET /computers", _computer_domain)
            yield page

    async def iter_computer_page_bodies(
        self,
        read: PageReader[PageT],
        *,
        last_update_ms: int = 0,
        page_size: int = 1000,
        domain_id: str | None = None,
    ) -> AsyncIterator[PageT]:
        """GET /computers page by page until lastPage, each body decoded by `read` only: a watch
        of a million clients reads six fields of each and skips SEPM's other hundred."""
        params: dict[str, Any] = {"lastUpdate": last_update_ms}
        if domain_id:
            params["domain"] = domain_id
        async for page in self._paged(
            "/computers", params, page_size, lambda response, where: read(response.content, where)
        ):
            yield page

    async def online_status(self) -> dict[str, Any]:
        """GET /stats/client/onlinestatus."""
        body, where = await self._get_json("/stats/client/onlinestatus")
        status = answers.expect_object(body, where)
        answers.nested_objects(status, ("clientCountStatsList",), where)
        return status

    async def is_replicated(self) -> bool:
        """GET /replication/is_replicated."""
        return answers.expect_bool(*await self._get_json("/replication/is_replicated"))

    async def replication_status(self) -> dict[str, Any]:
        """GET /replication/status."""
        body, where = await self._get_json("/replication/status")
        status = answers.expect_object(body, where)
        answers.nested_objects(status, ("replicationStatus", "replicationPartnerStatusList"), where)
        return status

    async def replicate_now(self, partner_site_name: str) -> int:
        """POST /replication/replicatenow (content=false, logs=false); returns `code`."""
        path = "/replication/replicatenow"
        params = {"partnerSiteName": partner_site_name, "content": "false", "logs": "false"}
        response = await self._call("POST", path, params=params, idempotent=False)
        where = f"POST {path}"
        body = answers.expect_object(_json(response, where), where)
        return answers.expect_int(body.get("code", -1), where, "code")

    async def close(self) -> None:
        """Log out (best effort) and release connections."""
        token, self._token = self._token, None
        try:
            if token is not None:
                started = self._monotonic()
                # Short: a service shutting down must not hang on a server that went away.
                response = await self._http.post(
                    "/identity/logout",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=min(self._connect_timeout, 2.0),
                )
                self._log("POST", "/identity/logout", response.status_code, started)
        except httpx.HTTPError as exc:
            log.debug("SEPM logout from %s failed: %s", self._origin, type(exc).__name__)
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> SepmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- paging ---------------------------------------------------------------------------
    def _pages(
        self, path: str, params: dict[str, Any], page_size: int, *, key: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        def read(response: httpx.Response, where: str) -> tuple[list[dict[str, Any]], bool]:
            return answers.page(_json(response, where), where, key=key)

        return self._paged(path, params, page_size, read)

    async def _paged(
        self,
        path: str,
        params: dict[str, Any],
        page_size: int,
        read: Callable[[httpx.Response, str], tuple[PageT, bool]],
    ) -> AsyncIterator[PageT]:
        index, where = 1, f"GET {path}"
        while True:
            query = {**params, "pageIndex": index, "pageSize": page_size}
            content, last = read(await self._call("GET", path, params=query), where)
            yield content
            # An empty page ends the scan too, so a server that never says lastPage cannot
            # keep us paging forever.
            if last or not content:
                return
            index += 1

    async def _get_json(
        self, path: str, *, params: dict[str, Any] | None = None, auth: bool = True
    ) -> tuple[Any, str]:
        """A GET's decoded body and the call's name for error messages."""
        response = await self._call("GET", path, params=params, auth=auth)
        where = f"GET {path}"
        return _json(response, where), where

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
        response = await self._call("POST", "/identity/authenticate", json=body, auth=False)
        where = "POST /identity/authenticate"
        # Never echo this body (it is a token); _json and expect_object name types only.
        answer = answers.expect_object(_json(response, where), where)
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise SepmAuthError(
                f"SEPM at {self._origin} answered the login without a token", retryable=True
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
    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        auth: bool = True,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or path.startswith(_IDENTITY)
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
                response = await self._http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                self._log(method, path, type(exc).__name__, started)
                error, verified_not_sent = self._transport_error(exc, method, path)
                failures += 1
                if (
                    error.retryable
                    and (safe or verified_not_sent)
                    and failures < policy.max_attempts
                ):
                    await self._sleep(self._backoff(failures))
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
                    await self._sleep(self._retry_after(response, throttled))
                    continue
            elif status >= 500 and safe:
                failures += 1
                if failures < policy.max_attempts:
                    await self._sleep(self._retry_after(response, failures))
                    continue
            if status >= 400:
                raise self._status_error(method, path, response)
            return response

    def _backoff(self, attempt: int) -> float:
        base = min(self._retry.backoff_cap_s, self._retry.backoff_base_s * 2 ** (attempt - 1))
        return base * (1 + self._retry.jitter * random.random())

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        raw = response.headers.get("Retry-After", "").strip()
        try:
            wait = min(float(raw), self._retry.retry_after_cap_s)
        except ValueError:
            # Absent, or an HTTP date we do not trust clocks enough to use.
            return self._backoff(attempt)
        # Jitter keeps many workers throttled together from coming back in lockstep.
        return max(wait, 0.0) + self._retry.jitter * random.random() * max(wait, 1.0)

    # -- errors and logs --------------------------------------------------------------------
    def _status_error(self, method: str, path: str, response: httpx.Response) -> SepmError:
        status = response.status_code
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        if path.startswith(_IDENTITY):
            # Never echo an identity body: it may carry what was sent.
            if status in (401, 403):
                account = self._credentials.username
                return SepmAuthError(
                    f"SEPM refused the API account {account!r} at {self._origin} "
                    f"(HTTP {status}): wrong password, locked, or not a system administrator",
                    status=status,
                    retryable=False,
                )
            return SepmError(
                f"SEPM at {self._origin} could not log in (HTTP {status})",
                status=status,
                retryable=retryable,
            )
        detail = _error_message(response)
        if status == 429:
            detail = f"still throttled after {self._retry.max_throttled} waits; {detail}"
        return SepmError(
            f"SEPM {method} {path} at {self._origin} failed with HTTP {status}: {detail}",
            status=status,
            retryable=retryable,
        )

    def _transport_error(
        self, exc: httpx.TransportError, method: str, path: str
    ) -> tuple[SepmError, bool]:
        """The error to report, and whether the request certainly never reached SEPM."""
        cause = _root_cause(exc)
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or str(cause)
            return (
                SepmError(
                    f"cannot reach {self._origin}: its TLS certificate is not trusted ({reason})",
                    retryable=False,
                ),
                True,
            )
        if isinstance(exc, httpx.ConnectTimeout):
            reason = f"connection timed out after {self._connect_timeout:g} s"
            return SepmError(f"cannot reach {self._origin}: {reason}"), True
        if isinstance(exc, httpx.ConnectError):
            if isinstance(cause, ConnectionRefusedError):
                reason = "connection refused"
            else:
                reason = str(cause) or type(cause).__name__
            return SepmError(f"cannot reach {self._origin}: {reason}"), True
        if isinstance(exc, httpx.TimeoutException):
            return (
                SepmError(
                    f"SEPM {method} {path} at {self._origin} did not answer within "
                    f"{self._read_timeout:g} s"
                ),
                False,
            )
        return (
            SepmError(f"SEPM {method} {path} at {self._origin} failed: {type(exc).__name__}"),
            False,
        )

    def _log(self, method: str, path: str, status: int | str, started: float) -> None:
        # Method, path, status and time only: never a body, never the Authorization header.
        elapsed = self._monotonic() - started
        log.debug("SEPM %s %s -> %s in %.1f ms", method, path, status, elapsed * 1000)
        metrics.SEPM_REQUESTS.labels(self._site, method, metrics.sepm_status(status)).inc()
        metrics.SEPM_LATENCY.labels(self._site).observe(max(elapsed, 0.0))


def _group_domain(group: dict[str, Any]) -> Any:
    return group.get("domain")


def _computer_domain(computer: dict[str, Any]) -> Any:
    group = computer.get("group")
    return group.get("domain") if isinstance(group, dict) else None


def _json(response: httpx.Response, where: str) -> Any:
    try:
        # orjson: a page of 1,000 computers decodes several times faster than with json.
        return orjson.loads(response.content)
    except ValueError:
        # A login page or a proxy's error page served with 200: not SEPM's API answering.
        content_type = response.headers.get("content-type", "no content type")
        raise answers.malformed(where, f"not JSON ({content_type})") from None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict) and body.get("errorMessage"):
        return str(body["errorMessage"])
    return response.reason_phrase or "no details"


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


async def connect_site(site: SiteTarget, vault: Vault, **options: Any) -> SepmClient:
    """A connector for the site a command names, as the orchestrator published it (address,
    trust set, account reference: never the command's own), with its account from the vault
    (it logs in on first use)."""
    try:
        site = await site_directory.resolve(site, vault)
    except site_directory.StaleSiteTargetError as exc:
        raise SepmError(str(exc), retryable=True) from None
    except site_directory.UnknownSiteTargetError as exc:
        raise SepmError(str(exc), retryable=False) from None
    try:
        secret = await vault.get(site.credential_ref)
    except SecretNotFoundError:
        raise SepmAuthError(
            f"no SEPM API account is stored under {site.credential_ref!r} for site {site.site}",
            retryable=False,
        ) from None
    credentials = SepmCredentials(
        username=str(secret.get("username", "")),
        password=str(secret.get("password", "")),
        domain=str(secret.get("domain") or ""),
    )
    return SepmClient(
        site.api_url,
        credentials,
        trusted_certificates_pem=list(site.trusted_certificates_pem),
        site=site.site,
        **options,
    )
