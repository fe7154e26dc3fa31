"""The twin driver: host operations through the SEPM simulator's host-agent API (/twin/v1).

Each call is one POST with the caller's idempotency key as the `Idempotency-Key` header; the
twin replays its first answer for a repeated key, so a retried command acts once. Secrets go
only into the install request body; errors carry the host's own text, never the request.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import httpx

from certrotate_shared.hostops.arguments import checked_partner
from certrotate_shared.hostops.backup_refs import twin_backup_id
from certrotate_shared.hostops.base import CertificateBackup, CertificateBundle, HostOperationError
from certrotate_shared.messages.common import ServerTarget, SiteTarget

log = logging.getLogger(__name__)

# Answers that can change by asking again with the same key (the twin does not remember them).
_RETRYABLE_STATUSES = {408, 425, 429}
# Where a swap writes, in order: Tomcat's keystore (8443/8446), Apache's pair (443/8445),
# then SEPM's record.
_CERTIFICATE_PARTS = (
    ("tomcat", "stores/tomcat"),
    ("apache", "stores/apache"),
    ("record", "record"),
)
# The host agent's answer when a partner's side is already in the state asked for.
_ALREADY = {"delete": "NOT_FOUND", "add": "ALREADY_PARTNERS"}


class TwinHostOperations:
    """HostOperations over the twin's host agent at its control-plane URL."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = endpoint.rstrip("/")
        if not base.endswith("/twin/v1"):
            base = f"{base}/twin/v1"
        self._endpoint = base
        self._timeout = timeout
        self._http = httpx.AsyncClient(base_url=base, timeout=timeout, transport=transport)

    async def backup_certificate(self, server: ServerTarget, *, key: str) -> CertificateBackup:
        body = await self._post(
            f"/servers/{server.name}/certificate/backup", key=key, what=f"back up {server.name}"
        )
        parts = body.get("fingerprints")
        if isinstance(parts, dict) and len(set(parts.values())) > 1:
            shown = ", ".join(f"{part} {fp}" for part, fp in sorted(parts.items()))
            raise HostOperationError(
                f"{server.name}'s certificate stores and SEPM's record disagree before the "
                f"rotation ({shown}); a rollback could not know which to bring back. Make "
                "them one certificate (the console's Update the server certificate) first",
                code="STORES_DISAGREE",
            )
        return CertificateBackup(
            backup_ref=str(body["backup_id"]), fingerprint=str(body["fingerprint_sha256"])
        )

    async def install_certificate(
        self, server: ServerTarget, bundle: CertificateBundle, *, key: str
    ) -> None:
        """Each store, then SEPM's record (what the management server list hands out): the
        three places a real swap must change, each visible in the twin's operation log."""
        body = install_request(bundle)
        base = f"/servers/{server.name}/certificate"
        for part, path in _CERTIFICATE_PARTS:
            try:
                await self._post(
                    f"{base}/{path}",
                    key=f"{key}:{part}",
                    what=f"install the certificate on {server.name} ({part})",
                    json=body,
                )
            except HostOperationError as exc:
                if exc.code is None and exc.status == 404 and part == "tomcat":
                    # A twin from before per-store operations: one call writes everything.
                    await self._post(
                        f"{base}/install",
                        key=key,
                        what=f"install the certificate on {server.name}",
                        json=body,
                    )
                    return
                raise

    async def restore_certificate(self, server: ServerTarget, backup_ref: str, *, key: str) -> None:
        await self._post(
            f"/servers/{server.name}/certificate/restore",
            key=key,
            what=f"restore backup {backup_ref} on {server.name}",
            json={"backup_id": backup_ref},
        )

    async def delete_certificate_backup(
        self, server: ServerTarget, backup_ref: str, *, key: str
    ) -> bool:
        backup_id = twin_backup_id(backup_ref)
        body = await self._post(
            f"/servers/{server.name}/certificate/backups/{backup_id}/delete",
            key=key,
            what=f"delete backup {backup_id} on {server.name}",
        )
        return bool(body.get("deleted"))

    async def restart_service(self, server: ServerTarget, service: str, *, key: str) -> None:
        await self._post(
            f"/servers/{server.name}/services/{service}/restart",
            key=key,
            what=f"restart {service} on {server.name}",
        )

    async def delete_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        await self._partner_change(site, partner, "delete", key=key, far=on_partner_side)

    async def add_replication_partner(
        self, site: SiteTarget, partner: str, *, key: str, on_partner_side: bool = False
    ) -> None:
        await self._partner_change(site, partner, "add", key=key, far=on_partner_side)

    async def _partner_change(
        self, site: SiteTarget, partner: str, action: str, *, key: str, far: bool
    ) -> None:
        partner = checked_partner(partner)  # it goes into a URL path
        here, there = (partner, site.site) if far else (site.site, partner)
        try:
            await self._post(
                f"/sites/{here}/replication/partners/{there}/{action}",
                key=key,
                what=f"{action} replication partner {there} of {here}",
            )
        except HostOperationError as exc:
            # The partner's side is already as wanted when the site acts on both sides at once
            # (SEPM may; today's twin does): nothing left to do there.
            if far and exc.code == _ALREADY[action]:
                log.info("twin: %s already has no change to make for %s", here, there)
                return
            raise

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(
        self, path: str, *, key: str, what: str, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(path, json=json, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            raise HostOperationError(
                f"could not {what}: the twin host agent at {self._endpoint} did not answer "
                f"within {self._timeout:g} s",
                retryable=True,
                code="TIMEOUT",
            ) from exc
        except httpx.TransportError as exc:
            raise HostOperationError(
                f"could not {what}: the twin host agent at {self._endpoint} is unreachable "
                f"({type(exc).__name__})",
                retryable=True,
                code="UNREACHABLE",
            ) from exc
        if response.is_success:
            log.info("twin host agent: %s done (key %s)", what, key)
            body = response.json()
            return body if isinstance(body, dict) else {}
        raise _error(what, response)


def install_request(bundle: CertificateBundle) -> dict[str, Any]:
    """The host agent's install body; the only place the bundle's secrets are written."""
    body: dict[str, Any] = {
        "format": bundle.format,
        "data_b64": base64.b64encode(bundle.data).decode(),
        "password": bundle.password,
    }
    if bundle.format == "pem":
        if bundle.key is None:
            raise HostOperationError(
                "a PEM certificate bundle needs its private key", code="INVALID_PRIVATE_KEY"
            )
        body["key_b64"] = base64.b64encode(bundle.key).decode()
    return body


def _error(what: str, response: httpx.Response) -> HostOperationError:
    code: str | None = None
    text = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body["errorCode"]) if body.get("errorCode") is not None else None
        text = str(body.get("errorMessage") or text)
    status = response.status_code
    retryable = status >= 500 or status in _RETRYABLE_STATUSES
    detail = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    retry_after = response.headers.get("Retry-After")
    if status == 429 and retry_after:
        detail = f"{detail}, retry after {retry_after} s"
    error = HostOperationError(
        f"could not {what}: {text} ({detail})", retryable=retryable, code=code
    )
    error.status = status
    return error
