"""Internal HTTP API: the orchestrator uploads a bundle for pre-flight and gets a reference.

Request bodies hold keystores and passwords: they are never logged, echoed or kept when the
bundle is rejected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError

from certificates.adapters import store
from certificates.domain.keystore import BundleRejected, Upload
from certificates.domain.validation import (
    Requirements,
    ValidatedCertificate,
    validate,
    validate_each,
)
from certificates.entrypoints.schemas import (
    BundleUpload,
    BundleUse,
    BundleUses,
    Holds,
    RetentionPurge,
    described,
)
from certificates.service_layer.dependencies import Dependencies
from certrotate_shared.http import ProblemError, install_problem_handlers
from certrotate_shared.runtime import ServiceRuntime

TOKEN_HEADER = "X-Certrotate-Internal-Token"  # noqa: S105 - a header name

log = logging.getLogger(__name__)


def _decode(value: SecretStr | None, field: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(
            422, "Invalid request", f"{field} is not valid base64", code="invalid_request"
        ) from None


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, "Payload too large", f"the body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, "Payload too large", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_api(runtime: ServiceRuntime, *, deps: Dependencies) -> FastAPI:
    settings = deps.settings
    app = FastAPI(title="certrotate certificates (internal)", openapi_url=None)
    install_problem_handlers(app)
    expected = settings.internal_token.get_secret_value().encode()

    def authorized(
        token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    ) -> None:
        if token is None or not hmac.compare_digest(token.encode(), expected):
            raise ProblemError(
                401, "Unauthorized", f"send the internal token in the {TOKEN_HEADER} header"
            )

    @app.post("/internal/v1/bundles", status_code=201, dependencies=[Depends(authorized)])
    async def upload_bundle(request: Request) -> JSONResponse:
        raw = await _read_limited(request, settings.max_bundle_request_bytes)
        try:
            body = BundleUpload.model_validate_json(raw)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
            raise ProblemError(
                422, "Invalid request", detail, code="invalid_request", errors=errors
            ) from None
        upload = Upload(
            format=body.format,
            data=_decode(body.data_b64, "data_b64") or b"",
            password=body.password.get_secret_value() if body.password is not None else None,
            key=_decode(body.key_b64, "key_b64"),
        )
        return await _validate_and_store(upload, body.site, body.hostnames, body.min_validity_days)

    @app.post(
        "/internal/v1/bundles/{bundle_ref}/uses",
        status_code=201,
        dependencies=[Depends(authorized)],
    )
    async def use_bundle(bundle_ref: str, body: BundleUse) -> JSONResponse:
        """Pre-flight a stored bundle for a site as if it were uploaded again now (expiry and
        names are checked against today and that site); the copy is the rotation's own, so a
        rotation's end never destroys a bundle other rotations may still name."""
        upload = await _stored_upload(bundle_ref)
        return await _validate_and_store(upload, body.site, body.hostnames, body.min_validity_days)

    @app.post(
        "/internal/v1/bundles/{bundle_ref}/uses/batch",
        status_code=201,
        dependencies=[Depends(authorized)],
    )
    async def use_bundle_for_sites(bundle_ref: str, body: BundleUses) -> JSONResponse:
        """The pre-flight of `uses` one by one, but the bundle decrypted and opened (its key
        derivation) once for all the sites: each site gets the verdict and the copy of its own
        it would get alone. Any site refused: 422 naming the first one, listing every refused
        site in `refusals`, and no copy kept (the campaign is not created)."""
        upload = await _stored_upload(bundle_ref)
        each = [_requirements(u.hostnames, u.min_validity_days) for u in body.uses]
        # Key derivation is CPU work; keep the event loop answering.
        verdicts = await asyncio.to_thread(validate_each, upload, each)
        refused = [
            (use.site, verdict)
            for use, verdict in zip(body.uses, verdicts, strict=True)
            if isinstance(verdict, BundleRejected)
        ]
        if refused:
            site, first = refused[0]
            raise ProblemError(
                422, "Certificate rejected", f"site {site!r}: {first.detail}",
                type_=f"urn:certrotate:certificate:{first.code}", code=first.code, site=site,
                refusals=[{"site": s, "code": r.code, "detail": r.detail, **r.extra}
                          for s, r in refused],
            )  # fmt: skip
        accepted = [v for v in verdicts if isinstance(v, ValidatedCertificate)]
        now = deps.clock.now()
        refs = []
        async with runtime.uow() as uow:
            for use, validated in zip(body.uses, accepted, strict=True):
                ref = await store.add_bundle(
                    uow.session,
                    deps.box,
                    site=use.site,
                    upload=upload,
                    validated=validated,
                    now=now,
                )
                refs.append(ref)
            await uow.commit()
        answers = [
            {"site": use.site, **described(ref, validated).model_dump()}
            for use, ref, validated in zip(body.uses, refs, accepted, strict=True)
        ]
        return JSONResponse({"uses": answers}, status_code=201)

    async def _stored_upload(bundle_ref: str) -> Upload:
        async with runtime.uow() as uow:
            b = await store.opened_bundle(uow.session, deps.box, bundle_ref)
        if b is None:
            raise ProblemError(
                404, "Not found", f"no bundle {bundle_ref} in the store (never uploaded, or purged)",
                code="bundle_not_found",
            )  # fmt: skip
        return Upload(format=b.format, data=b.data, password=b.password, key=b.key)

    def _requirements(hostnames: list[str], min_validity_days: int | None) -> Requirements:
        return Requirements(
            hostnames=hostnames,
            min_validity_days=(
                settings.min_validity_days if min_validity_days is None else min_validity_days
            ),
            now=deps.clock.now(),
        )

    async def _validate_and_store(
        upload: Upload, site: str, hostnames: list[str], min_validity_days: int | None
    ) -> JSONResponse:
        requirements = _requirements(hostnames, min_validity_days)
        try:
            # Key derivation (PKCS#12, JKS) is CPU work; keep the event loop answering.
            validated = await asyncio.to_thread(validate, upload, requirements)
        except BundleRejected as rejected:
            raise ProblemError(
                422,
                "Certificate rejected",
                rejected.detail,
                type_=f"urn:certrotate:certificate:{rejected.code}",
                code=rejected.code,
                **rejected.extra,
            ) from None
        async with runtime.uow() as uow:
            bundle_ref = await store.add_bundle(
                uow.session,
                deps.box,
                site=site,
                upload=upload,
                validated=validated,
                now=deps.clock.now(),
            )
            await uow.commit()
        return JSONResponse(described(bundle_ref, validated).model_dump(), status_code=201)

    @app.post("/internal/v1/bundles/holds", dependencies=[Depends(authorized)])
    async def hold_bundles(body: Holds) -> dict[str, list[str]]:
        """The bundles a live rotation, campaign or upload names: they must not expire."""
        async with runtime.uow() as uow:
            found = await store.hold_bundles(uow.session, body.bundle_refs, deps.clock.now())
            await uow.commit()
        return {"held": found, "missing": sorted(set(body.bundle_refs) - set(found))}

    @app.post("/internal/v1/retention/purge", dependencies=[Depends(authorized)])
    async def purge_retained(body: RetentionPurge) -> dict[str, int]:
        async with runtime.uow() as uow:
            counts = await store.purge_retained(
                uow.session,
                saga_ids=body.saga_ids,
                bundle_refs=body.bundle_refs,
                keep_backups=body.keep_backups,
                now=deps.clock.now(),
            )
            await uow.commit()
        log.info("retention of %d rotation(s): %s", len(body.saga_ids), counts)
        if counts["server_backups"]:
            deps.wake_jobs()
        return counts

    @app.delete(
        "/internal/v1/bundles/{bundle_ref}", status_code=204, dependencies=[Depends(authorized)]
    )
    async def delete_bundle(bundle_ref: str) -> Response:
        async with runtime.uow() as uow:
            deleted = await store.delete_bundle(uow.session, bundle_ref)
            await uow.commit()
        if not deleted:
            raise ProblemError(404, "Not found", f"no bundle {bundle_ref} in the store")
        return Response(status_code=204)

    return app
