"""Routes of webhook sources (admin) and of signed deliveries (`POST /v1/webhooks/{source}`)."""

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, model_validator

from certrotate_shared.http import problem_response
from orchestrator.domain.state import RotationOptions
from orchestrator.entrypoints.problems import problem
from orchestrator.entrypoints.schemas import (
    BUNDLE_ID,
    CertificateUploadIn,
    certificate_of,
    one_certificate,
)
from orchestrator.service_layer import audit_log
from orchestrator.service_layer import webhook_deliveries as deliveries
from orchestrator.service_layer import webhook_sources as sources
from orchestrator.service_layer import webhooks as service
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal, Role

RoleCheck = Callable[[Role], Callable[..., Awaitable[Principal]]]

_EXAMPLE: dict[str, Any] = {
    "site": "site-a",
    "certificate": {
        "format": "pkcs12",
        "data_b64": "MIIKcQIBAzCCCjcGCSqGSIb3DQEHAaCC...",
        "password": "keystore-password",
    },
    "change_id": "CHG0031337",
    "options": {"require_approval": True},
}
# The certificate uploaded once before (POST /v1/bundles): the delivery carries no key at all.
_BY_REFERENCE: dict[str, Any] = {
    "servers": ["sepm-a1", "sepm-a2"],
    "bundle_id": "bnd_5f0c1e9a7d3b42c8a1e6f0b9d2c7a4e1",
    "change_id": "CHG0031338",
}


class TriggerIn(BaseModel):
    """A certificate for the management servers of one site is ready: rotate it."""

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [_EXAMPLE, _BY_REFERENCE]},
    }

    site: str | None = Field(None, min_length=1, description="The site, as registered")
    servers: list[str] | None = Field(
        None, min_length=1, description="Or management server names, all of one site"
    )
    certificate: CertificateUploadIn | None = None
    bundle_id: str | None = BUNDLE_ID
    change_id: str | None = Field(None, max_length=200, description="The ITSM change record")
    options: RotationOptions = Field(default_factory=RotationOptions)

    @model_validator(mode="after")
    def _one_target(self) -> "TriggerIn":
        if (self.site is None) == (self.servers is None):
            raise ValueError("name either site or servers")
        one_certificate(self.certificate, self.bundle_id)
        return self


class TriggerAnswer(BaseModel):
    outcome: str = Field(description="started | superseded | duplicate")
    rotation_id: str
    site: str
    change_id: str | None
    certificate_fingerprint_sha256: str
    superseded_rotation_id: str | None = None
    rotation_url: str


class SourceIn(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = Field("", max_length=500)


class RollIn(BaseModel):
    model_config = {"extra": "forbid"}
    keep_old_hours: float = Field(
        24.0,
        ge=0,
        strict=True,
        le=24 * 30,
        description="How long the secrets in use stay valid (0: now)",
    )


class SecretOut(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime | None
    active: bool


class NewSecretOut(BaseModel):
    id: str
    secret: str = Field(description="Shown in this answer only; give it to the sender")
    created_at: datetime


class SourceOut(BaseModel):
    name: str
    description: str
    created_at: datetime
    created_by: str
    secrets: list[SecretOut]
    url: str


class SourceWithSecretOut(SourceOut):
    secret: NewSecretOut


class SourceList(BaseModel):
    items: list[SourceOut]


_DELIVERY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("Signature missing or wrong, or a stale timestamp", "signature_missing",
                 "bad_signature", "stale_timestamp"),
    404: problem("Unknown source", "unknown_source"),
    409: problem("The site is past the swap with another certificate, or a reused webhook-id",
                 "site_busy", "webhook_id_reused"),
    422: problem("Invalid payload, servers unknown or of several sites, or the certificate "
                 "failed pre-flight (its own code)", "invalid_payload", "unknown_server",
                 "several_sites", "unknown_site", "no_servers", "credentials_missing",
                 "unknown_bundle"),
    502: problem("The certificates service could not check the certificate",
                 "certificates_unavailable"),
}  # fmt: skip


def install(app: FastAPI, deps: Deps, role: RoleCheck) -> None:
    """Add the routes, and the trigger's payload schema to the OpenAPI document (the route reads
    the raw body itself: the signature covers the exact bytes, and must be checked first)."""
    app.include_router(_router(deps, role))
    _document_payload(app)


def _router(deps: Deps, role: RoleCheck) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    Admin = Annotated[Principal, Depends(role("admin"))]

    @router.post(
        "/v1/webhooks/sources",
        status_code=201,
        response_model=SourceWithSecretOut,
        responses={
            409: problem("A source of that name exists", "source_exists"),
            422: problem("A name that cannot be a URL path segment", "invalid_source_name"),
        },
    )
    async def add_source(body: SourceIn, who: Admin) -> dict[str, Any]:
        """Register a sender; its first secret is in this answer only."""
        async with deps.rt.uow() as uow:
            source = await sources.create_source(
                uow.session, deps.vault, name=body.name, description=body.description,
                by=who.name, now=deps.clock.now(),
            )  # fmt: skip
            await audit_log.record(uow.session, actor=who.name, action="webhook_source.created",
                                   target=body.name, now=deps.clock.now(),
                                   detail={"description": body.description,
                                           "secret_id": source["secret"]["id"]})  # fmt: skip
            await uow.commit()
        return source

    @router.get("/v1/webhooks/sources", response_model=SourceList)
    async def list_sources(_: Admin) -> dict[str, Any]:
        async with deps.rt.uow() as uow:
            return {"items": await sources.list_sources(uow.session, now=deps.clock.now())}

    @router.get("/v1/webhooks/sources/{name}", response_model=SourceOut)
    async def get_source(name: str, _: Admin) -> dict[str, Any]:
        async with deps.rt.uow() as uow:
            return await sources.get_source(uow.session, name, now=deps.clock.now())

    @router.delete("/v1/webhooks/sources/{name}", status_code=204)
    async def remove_source(name: str, who: Admin) -> Response:
        async with deps.rt.uow() as uow:
            await sources.delete_source(uow.session, deps.vault, name)
            await audit_log.record(uow.session, actor=who.name, action="webhook_source.deleted",
                                   target=name, now=deps.clock.now())  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    @router.post("/v1/webhooks/sources/{name}/secrets", status_code=201,
                 response_model=SourceWithSecretOut)  # fmt: skip
    async def roll_secret(name: str, who: Admin, body: RollIn | None = None) -> dict[str, Any]:
        """A new secret (shown once); the ones in use stay valid `keep_old_hours` more."""
        keep = (body or RollIn()).keep_old_hours
        async with deps.rt.uow() as uow:
            source = await sources.roll_secret(
                uow.session, deps.vault, name, keep_old_hours=keep, now=deps.clock.now()
            )
            await audit_log.record(uow.session, actor=who.name,
                                   action="webhook_source.secret_rolled", target=name,
                                   now=deps.clock.now(), detail={"secret_id": source["secret"]["id"],
                                                           "keep_old_hours": keep})  # fmt: skip
            await uow.commit()
        return source

    @router.delete("/v1/webhooks/sources/{name}/secrets/{secret_id}", status_code=204)
    async def revoke_secret(name: str, secret_id: str, who: Admin) -> Response:
        async with deps.rt.uow() as uow:
            await sources.revoke_secret(
                uow.session, deps.vault, name, secret_id, now=deps.clock.now()
            )
            await audit_log.record(uow.session, actor=who.name,
                                   action="webhook_source.secret_revoked", target=name,
                                   now=deps.clock.now(), detail={"secret_id": secret_id})  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    @router.post(
        "/v1/webhooks/{source}",
        status_code=201,
        response_model=TriggerAnswer,
        responses={200: {"model": TriggerAnswer, "description": "Already known"},
                   **_DELIVERY_ERRORS},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/TriggerIn"},
            "examples": {"inline": {"summary": "The keystore in the delivery", "value": _EXAMPLE},
                         "bundle": {"summary": "A bundle uploaded before (POST /v1/bundles)",
                                    "value": _BY_REFERENCE}}}}}},
    )  # fmt: skip
    async def deliver(source: str, request: Request) -> JSONResponse:
        """A signed trigger (Standard Webhooks): start the rotation of a site with a new
        certificate. A retried delivery (same webhook-id) gets the same answer; a certificate
        already being rolled out returns that rotation; a newer one supersedes a rotation that
        has not begun the swap, and is refused (409 site_busy) once it has."""
        body = await request.body()
        webhook_id = await deliveries.verify(
            source, body, request.headers, db=deps.db, clock=deps.clock, vault=deps.vault
        )
        answer = await deliveries.replayed(source, webhook_id, body, db=deps.db)
        if answer is None:
            try:
                trigger = TriggerIn.model_validate(json.loads(body))
            except (ValueError, ValidationError) as exc:
                return _invalid(exc)
            answer = await service.trigger_rotation(
                starter=deps.starter, source=source, webhook_id=webhook_id, body=body,
                trigger=service.Trigger(
                    site=trigger.site, servers=trigger.servers or [],
                    upload=certificate_of(trigger.certificate, trigger.bundle_id),
                    options=trigger.options, change_id=trigger.change_id,
                ),
            )  # fmt: skip
        return JSONResponse(answer.body, status_code=answer.status)

    return router


def _invalid(exc: Exception) -> JSONResponse:
    # Never echo input values back: the payload holds a keystore and its password.
    if isinstance(exc, ValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
    else:
        errors = [{"field": "", "message": "the body is not JSON"}]
    fields = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return problem_response(422, "Invalid request", fields, code="invalid_payload", errors=errors)


def _document_payload(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schema = TriggerIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components["TriggerIn"] = schema
        return document

    app.openapi = openapi  # type: ignore[method-assign]
