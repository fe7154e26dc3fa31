"""HTTP clients of the two services the API consults synchronously."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class UpstreamUnavailableError(RuntimeError):
    """The other service did not answer usefully; the message says which and why."""


@dataclass(frozen=True)
class BundleRejectedError(Exception):
    """The certificates service refused the bundle (wrong password, expired, SAN missing...);
    `site`: the first site refused, when one bundle was checked for several."""

    code: str
    detail: str
    site: str | None = None


@dataclass(frozen=True)
class RegisteredBundle:
    bundle_ref: str
    fingerprint_sha256: str
    subject: str
    not_after: datetime | None
    sans: list[str]
    certificate_pem: str


class CertificatesClient:
    """POST /internal/v1/bundles: pre-flight validation; the bundle is stored there, not here."""

    def __init__(self, http: httpx.AsyncClient, internal_token: str) -> None:
        self._http = http
        self._token = internal_token

    async def register_bundle(self, body: dict[str, Any]) -> RegisteredBundle:
        return await self._stored("/internal/v1/bundles", body)

    async def use_bundle(self, bundle_ref: str, body: dict[str, Any]) -> RegisteredBundle:
        """A stored bundle pre-flighted again for one site; the answer is a copy of its own."""
        return await self._stored(f"/internal/v1/bundles/{bundle_ref}/uses", body)

    async def use_bundle_for_sites(
        self, bundle_ref: str, uses: list[dict[str, Any]]
    ) -> list[RegisteredBundle]:
        """A stored bundle pre-flighted for each site of `uses` (in their order), opened once
        per request: a copy for each; BundleRejectedError names the first refused site, and
        then no copy is kept."""
        path = f"/internal/v1/bundles/{bundle_ref}/uses/batch"
        copies: list[RegisteredBundle] = []
        for start in range(0, len(uses), USES_PER_REQUEST):
            try:
                data = await self._post_bundles(
                    path, {"uses": uses[start : start + USES_PER_REQUEST]}, timeout=600.0
                )
            except BundleRejectedError:
                for copy in copies:  # the earlier parts' copies, of a campaign not created
                    await self.discard_bundle(copy.bundle_ref)
                raise
            copies += [_registered(use) for use in data["uses"]]
        return copies

    async def _stored(self, path: str, body: dict[str, Any]) -> RegisteredBundle:
        return _registered(await self._post_bundles(path, body, timeout=60.0))

    async def _post_bundles(
        self, path: str, body: dict[str, Any], *, timeout: float
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(
                path,
                json=body,
                headers={"X-Certrotate-Internal-Token": self._token},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(
                f"the certificates service cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code == 404 and _json(response).get("code") == "bundle_not_found":
            raise BundleRejectedError(
                code="bundle_not_found", detail=str(_json(response).get("detail"))
            )
        if response.status_code in (400, 422):
            problem = _json(response)
            # Several sites checked: the first refused one, with its own reason.
            first = (problem.get("refusals") or [problem])[0]
            raise BundleRejectedError(
                code=str(first.get("code") or "invalid_certificate"),
                detail=str(first.get("detail") or "the certificate was rejected"),
                site=first.get("site"),
            )
        if response.status_code != 201 and response.status_code != 200:
            raise UpstreamUnavailableError(
                f"the certificates service answered {response.status_code}"
            )
        return _json(response)

    async def hold_bundles(self, bundle_refs: list[str]) -> list[str]:
        """Keep these bundles past the store's TTL; returns the ones it no longer has."""
        data = await self._internal_post("/internal/v1/bundles/holds", {"bundle_refs": bundle_refs})
        return list(data.get("missing", []))

    async def purge_retained(
        self,
        *,
        saga_ids: list[str],
        bundle_refs: list[str],
        keep_backups: dict[str, list[str]] | None = None,
    ) -> None:
        """Delete what ended rotations left behind (their bundles and records) and have the
        backups on their servers deleted, except `keep_backups` (saga -> servers)."""
        body = {
            "saga_ids": saga_ids,
            "bundle_refs": bundle_refs,
            "keep_backups": keep_backups or {},
        }
        await self._internal_post("/internal/v1/retention/purge", body)

    async def _internal_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                path, json=body, headers={"X-Certrotate-Internal-Token": self._token}, timeout=60.0
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(
                f"the certificates service cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise UpstreamUnavailableError(
                f"the certificates service answered {response.status_code} to {path}"
            )
        return _json(response)

    async def discard_bundle(self, bundle_ref: str) -> None:
        """Drop a bundle no rotation will use (best effort: purges catch up with leftovers)."""
        try:
            await self._http.delete(
                f"/internal/v1/bundles/{bundle_ref}",
                headers={"X-Certrotate-Internal-Token": self._token},
                timeout=30.0,
            )
        except httpx.HTTPError:
            pass


# The certificates service takes at most 500 sites a request (MAX_USES_PER_BATCH).
USES_PER_REQUEST = 500


def _registered(data: dict[str, Any]) -> RegisteredBundle:
    return RegisteredBundle(
        bundle_ref=data["bundle_ref"],
        fingerprint_sha256=data["fingerprint_sha256"],
        subject=data.get("subject", ""),
        not_after=datetime.fromisoformat(data["not_after"]) if data.get("not_after") else None,
        sans=list(data.get("sans", [])),
        certificate_pem=data.get("certificate_pem", ""),
    )


@dataclass(frozen=True)
class ListStream:
    """A client list on its way from the client-monitor, relayed as it arrives."""

    media_type: str
    next_cursor: str | None
    body: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class ClientMonitorClient:
    """The at-risk, straggler and pending lists of a propagation watch, and accepted lists."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def clients(
        self, watch_id: str, *, status: str, fmt: str, cursor: str | None, limit: int | None
    ) -> ListStream:
        """A watch's list (a page of it with `limit`), streamed, never held whole here."""
        params = _list_params(fmt=fmt, cursor=cursor, limit=limit, status=status)
        return await self._stream(f"/v1/watches/{watch_id}/clients", params, f"watch {watch_id!r}")

    async def accepted_clients(
        self, list_id: str, *, fmt: str, cursor: str | None, limit: int | None
    ) -> ListStream:
        params = _list_params(fmt=fmt, cursor=cursor, limit=limit)
        path = f"/v1/accepted-lists/{list_id}/clients"
        return await self._stream(path, params, f"accepted list {list_id!r}")

    async def accept_list(self, watch_id: str) -> dict[str, Any]:
        """Freeze the watch's at-risk list as it is now; its id, count and sha256 come back."""
        try:
            response = await self._http.post(
                f"/v1/watches/{watch_id}/accepted-lists",
                json={"status": "at_risk"},
                timeout=600.0,  # a million clients are copied in one transaction
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from None
        _raise_for(response, f"watch {watch_id!r}", ok=(201,))
        data = _json(response)
        return {k: data[k] for k in ("list_id", "watch_id", "status", "count", "sha256")}

    async def _stream(self, path: str, params: dict[str, Any], what: str) -> ListStream:
        request = self._http.build_request("GET", path, params=params, timeout=60.0)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from None
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            _raise_for(response, what, ok=(200,))
        return ListStream(
            media_type=response.headers.get("content-type", "application/json"),
            next_cursor=response.headers.get(NEXT_CURSOR_HEADER),
            body=response.aiter_raw(),
            close=response.aclose,
        )


NEXT_CURSOR_HEADER = "X-Next-Cursor"


def _list_params(**given: Any) -> dict[str, Any]:
    return {("format" if k == "fmt" else k): v for k, v in given.items() if v is not None}


def _unreachable(exc: httpx.HTTPError) -> UpstreamUnavailableError:
    return UpstreamUnavailableError(
        f"the client-monitor service cannot be reached ({type(exc).__name__})"
    )


def _raise_for(response: httpx.Response, what: str, *, ok: tuple[int, ...]) -> None:
    if response.status_code in ok:
        return
    if response.status_code == 404:
        raise UpstreamUnavailableError(f"the client-monitor knows no {what}")
    problem = _json(response)
    if response.status_code == 400 and problem.get("code") == "invalid_cursor":
        raise InvalidListRequestError(str(problem.get("detail") or "invalid cursor"))
    detail = problem.get("detail") or f"status {response.status_code}"
    raise UpstreamUnavailableError(f"the client-monitor service answered: {detail}")


class InvalidListRequestError(ValueError):
    """The client-monitor refused the paging parameters (a cursor it never handed out)."""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
