"""/v1/rotations: start a rotation, read it, and steer it (pause, resume, cancel, approve, decide)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from certrotate_shared.http import ProblemError
from orchestrator.domain.inputs import (
    ApprovalGiven,
    CancelRequested,
    DecisionMade,
    OperatorAction,
    PauseRequested,
    ResumeRequested,
)
from orchestrator.entrypoints import schemas
from orchestrator.entrypoints.conditional import (
    NOT_MODIFIED,
    IfNoneMatch,
    none_match,
    not_modified,
    tagged_json,
)
from orchestrator.entrypoints.deps import (
    MAX_ID,
    Answers,
    AppDeps,
    Approver,
    Operator,
    Viewer,
    ViewerReading,
)
from orchestrator.entrypoints.problems import PREFLIGHT, Responses, problem
from orchestrator.entrypoints.rotation_models import (
    VIEW_REVISION,
    HistoryPage,
    RotationOut,
    RotationPage,
)
from orchestrator.entrypoints.views import rotation_summary, rotation_view
from orchestrator.service_layer import at_risk as at_risk_service
from orchestrator.service_layer import rotation_actions as actions
from orchestrator.service_layer import rotation_reads as reads
from orchestrator.service_layer import tasks
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.rotation_options import authorize_options, with_operator_defaults

router = APIRouter(prefix="/v1/rotations", tags=["rotations"])

_ACTION: Responses = {
    409: problem(
        "The rotation's state does not allow this now, or it changed meanwhile (retry)",
        "action_not_possible",
        "busy",
    )
}


async def view(deps: Deps, saga_id: str) -> RotationOut:
    state = await actions.get_rotation(saga_id, db=deps.db)
    async with deps.rt.uow() as uow:
        open_tasks = await tasks.list_tasks(uow.session, rotation_id=saga_id, status=None)
    return rotation_view(state, now=deps.clock.now(), tasks=open_tasks)


async def _act(deps: Deps, saga_id: str, action: OperatorAction) -> RotationOut:
    await actions.act(saga_id, action, db=deps.db, clock=deps.clock, alarm=deps.alarm)
    return await view(deps, saga_id)


@router.post(
    "",
    status_code=201,
    responses={
        200: {"description": "Already started with this Idempotency-Key: the same rotation",
              "model": RotationOut},
        403: problem("An orphan-risk budget above the operator's needs the approver role",
                     "approver_required"),
        409: problem("The site (or its replication farm) is being rotated, or the "
                     "Idempotency-Key was used for another request", "site_busy",
                     "idempotency_key_reused"),
        422: problem("Unknown site, a site without servers or credentials, a bad window or "
                     "budget, or the certificate failed pre-flight (its own code, e.g. "
                     + ", ".join(PREFLIGHT) + ")", "unknown_site", "no_servers",
                     "credentials_missing", "invalid_window", "budget_above_maximum",
                     "unknown_bundle",
                     *PREFLIGHT),
        502: problem("The certificates service could not check the certificate",
                     "certificates_unavailable"),
    },
)  # fmt: skip
async def create_rotation(
    body: schemas.RotationIn,
    response: Response,
    who: Operator,
    deps: AppDeps,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> RotationOut:
    """Pre-flight the certificate, then start the rotation saga."""
    state, created = await deps.starter.start(
        site=body.site,
        upload=schemas.certificate_of(body.certificate, body.bundle_id),
        options=authorize_options(
            with_operator_defaults(body.options.stored(), deps.settings),
            may_approve=who.may("approver"),
            settings=deps.settings,
        ),
        change_id=body.change_id,
        requested_by=who.name,
        principal=who.record(),
        budget_reason=body.orphan_risk_budget_reason,
        idempotency_key=idempotency_key,
        body=body.model_dump(mode="json"),
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/rotations/{state.saga_id}"
    return await view(deps, state.saga_id)


@router.get("", responses={422: problem("A cursor this server did not give", "invalid_cursor")})
async def list_rotations(
    _: Viewer,
    deps: AppDeps,
    state: Literal["running", "compensating", "paused", "completed", "compensated", "failed"]
    | None = None,
    site: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    change_id: Annotated[str | None, Query(max_length=200)] = None,
) -> RotationPage:
    items, next_cursor = await actions.list_rotations(
        db=deps.db, status=state, site=site, cursor=cursor, limit=limit, change_id=change_id
    )
    return RotationPage(items=[rotation_summary(s) for s in items], next_cursor=next_cursor)


@router.get("/{rotation_id}", response_model=RotationOut, responses=NOT_MODIFIED)
async def get_rotation(
    rotation_id: str,
    reading: ViewerReading,
    deps: AppDeps,
    answers: Answers,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The rotation; ETag on every answer, 304 when If-None-Match holds the current one."""
    now = deps.clock.now()
    stamp = await reads.rotation_stamp(reading.session, rotation_id)
    tag = stamp.tag(now, revision=VIEW_REVISION)
    if not none_match(if_none_match, tag):
        return not_modified(tag)
    body = answers.get(rotation_id, tag)
    if body is None:
        state, version = await reads.rotation_state(reading.session, rotation_id)
        if version != stamp.version:  # it moved on in between: tag what is answered
            tag = stamp.at(state, version).tag(now, revision=VIEW_REVISION)
        body = rotation_view(state, now=now, tasks=stamp.open_tasks).model_dump_json().encode()
        answers.put(rotation_id, tag, body)
    return tagged_json(body, tag)


@router.get("/{rotation_id}/events", response_model=HistoryPage, responses=NOT_MODIFIED)
async def rotation_events(
    rotation_id: str,
    reading: ViewerReading,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The rotation's history, `limit` entries after `after`; ETag and 304 as for the rotation."""
    tag, last = await reads.history_tag(reading.session, rotation_id)
    if not none_match(if_none_match, tag):
        return not_modified(tag)
    items, next_after = await reads.history_page(
        reading.session, rotation_id, after=after, limit=limit, last=last
    )
    page = HistoryPage.model_validate({"items": items, "next_after": next_after})
    return tagged_json(page.model_dump_json().encode(), tag)


@router.post("/{rotation_id}/pause", responses=_ACTION)
async def pause(
    rotation_id: str, who: Operator, deps: AppDeps, body: schemas.PauseIn | None = None
) -> RotationOut:
    reason = (body or schemas.PauseIn()).reason
    return await _act(deps, rotation_id, PauseRequested(by=who.name, reason=reason))


@router.post("/{rotation_id}/resume", responses=_ACTION)
async def resume(rotation_id: str, who: Operator, deps: AppDeps) -> RotationOut:
    return await _act(deps, rotation_id, ResumeRequested(by=who.name))


@router.post("/{rotation_id}/cancel", responses=_ACTION)
async def cancel(
    rotation_id: str, body: schemas.CancelIn, who: Operator, deps: AppDeps
) -> RotationOut:
    return await _act(deps, rotation_id, CancelRequested(by=who.name, reason=body.reason))


@router.post(
    "/{rotation_id}/approve",
    responses={
        **_ACTION,
        403: problem("An approver may not approve a rotation they started", "self_approval"),
    },
)
async def approve(
    rotation_id: str, who: Approver, deps: AppDeps, body: schemas.ApproveIn | None = None
) -> RotationOut:
    await actions.refuse_self_approval(rotation_id, who.id, db=deps.db)
    note = (body or schemas.ApproveIn()).note
    return await _act(deps, rotation_id, ApprovalGiven(by=who.name, note=note, principal=who.id))


@router.post(
    "/{rotation_id}/decide",
    responses={
        **_ACTION,
        403: problem("Accepting at-risk clients (proceed) needs the approver role",
                     "approver_required"),
        502: problem("The client monitor did not answer; a proceed must name the clients it "
                     "accepts", "client_monitor_unavailable"),
    },
)  # fmt: skip
async def decide(
    rotation_id: str, body: schemas.DecideIn, who: Operator, deps: AppDeps
) -> RotationOut:
    if body.decision == "proceed" and not who.may("approver"):
        raise ProblemError(
            403,
            "Forbidden",
            "accepting at-risk clients (proceed) needs the approver role",
            code="approver_required",
        )
    decision = DecisionMade(
        by=who.name, decision=body.decision, reason=body.reason, change_id=body.change_id,
        extend_days=body.extend_days, principal=who.id,
    )  # fmt: skip
    await at_risk_service.decide_with_at_risk_list(
        rotation_id, decision,
        db=deps.db, clock=deps.clock, alarm=deps.alarm, client_monitor=deps.client_monitor,
    )  # fmt: skip
    return await view(deps, rotation_id)
