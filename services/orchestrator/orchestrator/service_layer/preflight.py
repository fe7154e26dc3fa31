"""The certificate a request brings (inline, or a bundle uploaded before) and its pre-flight:
the certificates service validates it for the site's names and keeps it, never this one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, update

from certrotate_shared.clock import Clock
from orchestrator.adapters.bundle_tables import uploaded_bundles
from orchestrator.adapters.clients import (
    BundleRejectedError,
    CertificatesClient,
    RegisteredBundle,
    UpstreamUnavailableError,
)
from orchestrator.adapters.repository import to_db
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import InputRejectedError, UpstreamError
from orchestrator.settings import Settings


@dataclass(frozen=True)
class CertificateUpload:
    """The bundle as uploaded: forwarded to the certificates service, never stored here."""

    format: str
    data_b64: str = field(repr=False)
    password: str | None = field(repr=False)
    key_b64: str | None = field(repr=False)


@dataclass(frozen=True)
class BundleReference:
    """A bundle uploaded before (POST /v1/bundles), named by its id instead of sent inline."""

    bundle_id: str


# What a request may carry as its certificate.
Certificate = CertificateUpload | BundleReference


@dataclass(frozen=True)
class Preflight:
    """What checking a request's certificate needs: the certificates service validates it for
    a site's names and keeps it (a copy per use of an uploaded bundle), the uploaded bundles'
    table says which ids may be named, the settings give the validity asked for."""

    db: Database
    clock: Clock
    settings: Settings
    certificates: CertificatesClient

    async def for_site(
        self, site: str, upload: Certificate, hostnames: list[str]
    ) -> RegisteredBundle:
        """The certificates service validates the upload for these names and keeps it; a
        bundle uploaded before is validated again (for this site, today) and copied for this
        use."""
        try:
            if isinstance(upload, BundleReference):
                await _require_uploaded(self.db, self.clock, upload.bundle_id)
                return await self.certificates.use_bundle(
                    upload.bundle_id,
                    {
                        "site": site,
                        "hostnames": hostnames,
                        "min_validity_days": self.settings.min_validity_days,
                    },
                )
            return await self.certificates.register_bundle(
                {
                    "site": site,
                    "format": upload.format,
                    "data_b64": upload.data_b64,
                    "password": upload.password,
                    "key_b64": upload.key_b64,
                    "hostnames": hostnames,
                    "min_validity_days": self.settings.min_validity_days,
                }
            )
        except BundleRejectedError as exc:
            if exc.code == "bundle_not_found":
                raise _unknown_bundle(upload) from None
            raise InputRejectedError(exc.detail, code=exc.code) from None
        except UpstreamUnavailableError as exc:
            raise UpstreamError(str(exc), code="certificates_unavailable") from None

    async def for_sites(
        self, reference: BundleReference, hostnames: dict[str, list[str]]
    ) -> dict[str, RegisteredBundle]:
        """`for_site` of one uploaded bundle for every site of `hostnames` (site -> its names)
        in one request, the bundle opened once there; each site still gets its own checks and
        its own copy. A refusal is a SiteRejectedError naming the first refused site in that
        order."""
        try:
            await _require_uploaded(self.db, self.clock, reference.bundle_id)
            uses = [
                {
                    "site": site,
                    "hostnames": names,
                    "min_validity_days": self.settings.min_validity_days,
                }
                for site, names in hostnames.items()
            ]
            copies = await self.certificates.use_bundle_for_sites(reference.bundle_id, uses)
        except BundleRejectedError as exc:
            if exc.code == "bundle_not_found":
                raise _unknown_bundle(reference) from None
            site = exc.site or next(iter(hostnames))
            raise SiteRejectedError(exc.detail, code=exc.code, site=site) from None
        except UpstreamUnavailableError as exc:
            raise UpstreamError(str(exc), code="certificates_unavailable") from None
        return dict(zip(hostnames, copies, strict=True))


class SiteRejectedError(InputRejectedError):
    """The certificate refused for one of several sites; `site` says which."""

    def __init__(self, detail: str, *, code: str, site: str) -> None:
        super().__init__(detail, code=code)
        self.site = site


async def _require_uploaded(db: Database, clock: Clock, bundle_id: str) -> None:
    # Only bundles uploaded through the API may be named: never another rotation's own copy.
    async with db() as uow:
        # An UPDATE answers a CursorResult (it has rowcount); execute() is typed as Result.
        used = cast(
            CursorResult[Any],
            await uow.session.execute(
                update(uploaded_bundles)
                .where(uploaded_bundles.c.id == bundle_id)
                .values(last_used_at=to_db(clock.now()))
            ),
        )
        await uow.commit()
    if not used.rowcount:
        raise _unknown_bundle(BundleReference(bundle_id))


def _unknown_bundle(reference: Certificate) -> InputRejectedError:
    name = reference.bundle_id if isinstance(reference, BundleReference) else "?"
    return InputRejectedError(
        f"no bundle {name!r} (never uploaded, or purged after its retention period): upload "
        "it with POST /v1/bundles",
        code="unknown_bundle",
    )


def site_hostnames(target: Any) -> list[str]:
    """Clients reach SEPM by these names; the address is how certrotate reaches the host."""
    return sorted(
        {name for server in target.servers for name in (server.hostnames or [server.address])}
    )
