"""Routes of callback subscriptions (admin): an ITSM tool hears about rotations it cares for."""

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from orchestrator.domain.subscriptions import EventType
from orchestrator.entrypoints.deps import MAX_ID
from orchestrator.entrypoints.problems import problem
from orchestrator.service_layer import audit_log, replies
from orchestrator.service_layer import subscriptions as service
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal, Role

RoleCheck = Callable[[Role], Callable[..., Awaitable[Principal]]]


class SubscriptionIn(BaseModel):
    model_config = {"extra": "forbid"}
    url: str = Field(
        min_length=1, max_length=2000, description="https URL that receives signed callbacks"
    )
    event_types: list[EventType] = Field(min_length=1)
    site: str | None = Field(None, description="Only rotations of this site")
    change_id: str | None = Field(None, max_length=200, description="Only this change record")
    description: str = Field("", max_length=500)
    may_approve: bool = Field(
        False, description="The receiver may approve rotations by a signed reply"
    )


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    site: str | None
    change_id: str | None
    description: str
    created_at: datetime
    created_by: str
    may_approve: bool


class NewSubscriptionOut(SubscriptionOut):
    secret: str = Field(description="Verifies our signatures (Standard Webhooks); shown once")


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="The webhook-id header; the same on every attempt")
    event_type: str
    rotation_id: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    response_prefix: str | None = Field(description="The start of the receiver's answer")
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_after: int | None


class ReplyIn(BaseModel):
    """An ITSM tool's answer to rotation.awaiting_approval, signed with the subscription's
    secret (Standard Webhooks headers)."""

    model_config = {"extra": "forbid"}
    rotation_id: str = Field(min_length=1, max_length=36)
    decision: Literal["approve"]
    approver: str = Field(
        min_length=1, max_length=200, description="Who approved, as the ITSM knows them"
    )
    change_id: str = Field(min_length=1, max_length=200, description="The rotation's change record")
    note: str = Field("", max_length=1000)


class ReplyOut(BaseModel):
    outcome: Literal["approved"]
    rotation_id: str
    approver: str
    change_id: str


def install(app: FastAPI, deps: Deps, role: RoleCheck) -> None:
    app.include_router(_router(deps, role))


def _router(deps: Deps, role: RoleCheck) -> APIRouter:
    router = APIRouter(tags=["subscriptions"])
    Admin = Annotated[Principal, Depends(role("admin"))]

    @router.post(
        "/v1/subscriptions",
        status_code=201,
        response_model=NewSubscriptionOut,
        responses={422: problem("Not https, or a host in a network not allowed",
                                "url_not_allowed")},
    )  # fmt: skip
    async def subscribe(body: SubscriptionIn, who: Admin) -> dict[str, Any]:
        """Callbacks signed with Standard Webhooks; the URL must be https and public unless an
        admin allowed its network (CERTROTATE_ORCHESTRATOR_CALLBACK_ALLOWED_NETWORKS)."""
        async with deps.rt.uow() as uow:
            created = await service.create_subscription(
                uow.session, deps.vault, deps.settings, url=body.url,
                event_types=list(body.event_types), site=body.site, change_id=body.change_id,
                description=body.description, by=who.name, now=deps.clock.now(),
                may_approve=body.may_approve,
            )  # fmt: skip
            await audit_log.record(uow.session, actor=who.name, action="subscription.created",
                                   target=created["id"], now=deps.clock.now(),
                                   # a query string may carry the receiver's own token
                                   detail={**body.model_dump(mode="json"),
                                           "url": body.url.split("?")[0]})  # fmt: skip
            await uow.commit()
        return created

    @router.get("/v1/subscriptions", response_model=SubscriptionList)
    async def list_subscriptions(_: Admin) -> dict[str, Any]:
        async with deps.rt.uow() as uow:
            return {"items": await service.list_subscriptions(uow.session)}

    @router.get(
        "/v1/subscriptions/{subscription_id}",
        response_model=SubscriptionOut,
        responses={404: problem("No such subscription", "unknown_subscription")},
    )
    async def get_subscription(subscription_id: str, _: Admin) -> dict[str, Any]:
        async with deps.rt.uow() as uow:
            return await service.get_subscription(uow.session, subscription_id)

    @router.delete("/v1/subscriptions/{subscription_id}", status_code=204)
    async def unsubscribe(subscription_id: str, who: Admin) -> Response:
        async with deps.rt.uow() as uow:
            await service.delete_subscription(uow.session, deps.vault, subscription_id)
            await audit_log.record(uow.session, actor=who.name, action="subscription.deleted",
                                   target=subscription_id, now=deps.clock.now())  # fmt: skip
            await uow.commit()
        return Response(status_code=204)

    @router.get("/v1/subscriptions/{subscription_id}/deliveries", response_model=DeliveryList)
    async def deliveries(
        subscription_id: str,
        _: Admin,
        status: Literal["pending", "delivered", "failed"] | None = None,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        """Every callback of the subscription, oldest first, with its last attempt."""
        async with deps.rt.uow() as uow:
            items, next_after = await service.list_deliveries(
                uow.session, subscription_id, status=status, after=after, limit=limit
            )
        return {"items": items, "next_after": next_after}

    @router.post(
        "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
        status_code=202,
        response_model=DeliveryOut,
        responses={409: problem("The delivery is still being tried", "delivery_pending")},
    )
    async def redeliver(
        subscription_id: str, delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)], who: Admin
    ) -> dict[str, Any]:
        """Send a delivered or failed callback again (same webhook-id), with a new retry window."""
        async with deps.rt.uow() as uow:
            delivery = await service.redeliver(
                uow.session, subscription_id, delivery_id, now=deps.clock.now()
            )
            await audit_log.record(uow.session, actor=who.name,
                                   action="subscription.redelivered", target=subscription_id,
                                   now=deps.clock.now(), detail={"delivery_id": delivery_id})  # fmt: skip
            await uow.commit()
        return delivery

    @router.post(
        "/v1/subscriptions/{subscription_id}/replies",
        response_model=ReplyOut,
        responses={401: problem("Not signed with the subscription's secret, or a stale "
                                "timestamp", "signature_missing", "bad_signature",
                                "stale_timestamp"),
                   403: problem("Replies not allowed, or outside the filter",
                                "replies_not_allowed", "outside_subscription"),
                   404: problem("Unknown subscription or rotation", "unknown_subscription",
                                "not_found"),
                   409: problem("Wrong change id, nothing to approve, or a reused webhook-id",
                                "change_mismatch", "action_not_possible", "webhook_id_reused"),
                   422: problem("Invalid reply", "invalid_reply")},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": ReplyIn.model_json_schema(),
            "example": {"rotation_id": "6f1c...", "decision": "approve", "approver": "jane.doe",
                        "change_id": "CHG0031337", "note": "CAB approved"}}}}},
    )  # fmt: skip
    async def reply(subscription_id: str, request: Request) -> JSONResponse:
        """Approve a rotation by a reply signed with the subscription's secret (allowed by an
        admin with may_approve); the approver and the change id go into its history."""
        body = await request.body()
        webhook_id, sub = await replies.verify_reply(
            subscription_id, body, request.headers, db=deps.db, vault=deps.vault
        )
        try:
            parsed = ReplyIn.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            return JSONResponse(
                {"type": "about:blank", "title": "Invalid request", "status": 422,
                 "detail": "the reply needs rotation_id, decision 'approve', approver and "
                 "change_id", "code": "invalid_reply"},
                status_code=422, media_type="application/problem+json",
            )  # fmt: skip
        answer = await replies.answer_reply(
            sub, webhook_id, body,
            replies.Reply(parsed.rotation_id, parsed.approver, parsed.change_id, parsed.note),
            db=deps.db, clock=deps.clock, alarm=deps.alarm,
        )  # fmt: skip
        return JSONResponse(answer.body, status_code=answer.status)

    return router
