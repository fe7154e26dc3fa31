"""HTTP clients of the two services the API consults synchronously."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx


class UpstreamUnavailableError(RuntimeError):
    """The other service did not answer usefully; the message says which and why."""


@dataclass(frozen=True)
class BundleRejectedError(Exception):
    """The certificates service refused the bundle (wrong password, expired, SAN missing...)."""

    code: str
    detail: str


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

    async def _stored(self, path: str, body: dict[str, Any]) -> RegisteredBundle:
        try:
            response = await self._http.post(
                path,
                json=body,
                headers={"X-Certrotate-Internal-Token": self._token},
                timeout=60.0,
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
            raise BundleRejectedError(
                code=str(problem.get("code") or "invalid_certificate"),
                detail=str(problem.get("detail") or "the certificate was rejected"),
            )
        if response.status_code != 201 and response.status_code != 200:
            raise UpstreamUnavailableError(
                f"the certificates service answered {response.status_code}"
            )
        data = _json(response)
        return RegisteredBundle(
            bundle_ref=data["bundle_ref"],
            fingerprint_sha256=data["fingerprint_sha256"],
            subject=data.get("subject", ""),
            not_after=datetime.fromisoformat(data["not_after"]) if data.get("not_after") else None,
            sans=list(data.get("sans", [])),
            certificate_pem=data.get("certificate_pem", ""),
        )

    async def hold_bundles(self, bundle_refs: list[str]) -> list[str]:
        """Keep these bundles past the store's TTL; returns the ones it no longer has."""
        data = await self._internal_post("/internal/v1/bundles/holds", {"bundle_refs": bundle_refs})
        return list(data.get("missing", []))

    async def purge_retained(self, *, saga_ids: list[str], bundle_refs: list[str]) -> None:
        """Delete what ended rotations left behind (their bundles and records)."""
        await self._internal_post(
            "/internal/v1/retention/purge", {"saga_ids": saga_ids, "bundle_refs": bundle_refs}
        )

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


class ClientMonitorClient:
    """The at-risk, straggler and pending lists of a propagation watch."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def clients(self, watch_id: str, *, status: str, fmt: str) -> tuple[str, bytes]:
        try:
            response = await self._http.get(
                f"/v1/watches/{watch_id}/clients",
                params={"status": status, "format": fmt},
                timeout=60.0,
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailableError(
                f"the client-monitor service cannot be reached ({type(exc).__name__})"
            ) from None
        if response.status_code == 404:
            raise UpstreamUnavailableError(f"the client-monitor knows no watch {watch_id!r}")
        if response.status_code != 200:
            detail = _json(response).get("detail") or f"status {response.status_code}"
            raise UpstreamUnavailableError(f"the client-monitor service answered: {detail}")
        return response.headers.get("content-type", "application/json"), response.content

    async def at_risk(self, watch_id: str) -> list[dict[str, Any]]:
        _, body = await self.clients(watch_id, status="at_risk", fmt="json")
        data = httpx.Response(200, content=body).json()
        items = data.get("clients", data.get("items")) if isinstance(data, dict) else data
        return [dict(item) for item in items or []]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
