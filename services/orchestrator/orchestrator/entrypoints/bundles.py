"""/v1/bundles: a certificate bundle uploaded once, then named by id (rotations, webhook
triggers, campaigns). Answers describe the certificate; the key and password never leave."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from orchestrator.entrypoints.deps import AppDeps, Operator, Viewer
from orchestrator.entrypoints.problems import PREFLIGHT, problem
from orchestrator.entrypoints.schemas import CertificateUploadIn
from orchestrator.service_layer import bundles
from orchestrator.service_layer.preflight import CertificateUpload


class BundleIn(CertificateUploadIn):
    site: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Check the names against this site's servers now (each use is checked "
        "for its own site anyway)",
    )
    description: str = Field("", max_length=500)


class BundleOut(BaseModel):
    id: str = Field(description="Name it as bundle_id in rotations, webhook triggers, campaigns")
    format: str
    fingerprint_sha256: str
    subject: str
    not_after: datetime | None
    sans: list[str]
    site: str | None
    description: str
    uploaded_by: str
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="Destroyed uploaded_bundle_days after this (or after created_at if unused)"
    )


class BundleList(BaseModel):
    items: list[BundleOut]


router = APIRouter(prefix="/v1/bundles", tags=["bundles"])


@router.post(
    "",
    status_code=201,
    response_model=BundleOut,
    responses={422: problem("Invalid body, or the certificate failed pre-flight (`code` names "
                            "the check)", "unknown_site", *PREFLIGHT),
               502: problem("The certificates service could not check the certificate",
                            "certificates_unavailable")},
)  # fmt: skip
async def upload(
    body: BundleIn, response: Response, who: Operator, deps: AppDeps
) -> dict[str, Any]:
    """Pre-flight a bundle and keep it sealed; its id stands in for the certificate."""
    found = await bundles.upload_bundle(
        db=deps.db,
        clock=deps.clock,
        settings=deps.settings,
        certificates=deps.certificates,
        upload=CertificateUpload(body.format, body.data_b64, body.password, body.key_b64),
        site=body.site,
        description=body.description,
        by=who.name,
    )
    response.headers["Location"] = f"/v1/bundles/{found['id']}"
    return found


@router.get("", response_model=BundleList)
async def list_all(_: Viewer, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return {"items": await bundles.list_bundles(uow.session)}


@router.get("/{bundle_id}", response_model=BundleOut,
            responses={404: problem("No such bundle", "unknown_bundle")})  # fmt: skip
async def get_one(bundle_id: str, _: Viewer, deps: AppDeps) -> dict[str, Any]:
    async with deps.rt.uow() as uow:
        return await bundles.get_bundle(uow.session, bundle_id)


@router.delete("/{bundle_id}", status_code=204,
               responses={404: problem("No such bundle", "unknown_bundle"),
                          502: problem("The certificates service did not destroy it: kept",
                                       "certificates_unavailable")})  # fmt: skip
async def destroy(bundle_id: str, who: Operator, deps: AppDeps) -> Response:
    """Destroy an uploaded bundle now (a wrong key, a leaked password). Rotations that already
    use it keep their own copy; new ones can no longer name it."""
    await bundles.delete_bundle(
        bundle_id, by=who.name, db=deps.db, clock=deps.clock, certificates=deps.certificates
    )
    return Response(status_code=204)
