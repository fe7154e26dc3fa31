"""/v1/campaigns: many sites rotated in waves, under a cap, a farm rule and a failure budget."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.domain import campaign_plan
from orchestrator.domain.campaign import CampaignState
from orchestrator.entrypoints.campaign_models import (
    CampaignAtRiskOut,
    CampaignList,
    CampaignOut,
    CampaignSiteViewOut,
    CampaignWaveOut,
)
from orchestrator.entrypoints.campaign_views import (
    at_risk_csv,
    at_risk_json,
    campaign_summary,
    campaign_view,
    site_view,
    wave_view,
)
from orchestrator.entrypoints.problems import Responses, problem
from orchestrator.entrypoints.rotation_models import streamed_list
from orchestrator.entrypoints.schemas import (
    BundleIdIn,
    CertificateUploadIn,
    MaintenanceWindowIn,
    RotationOptionsIn,
    certificate_of,
)
from orchestrator.service_layer import (
    campaign_driver,
    campaign_export,
    campaign_records,
    campaigns,
    preflight,
    rotation_actions,
)
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.errors import NotFoundError
from orchestrator.service_layer.tokens import Principal


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanIn(_Body):
    # Exactly one of waves and sites (the validator below), stated for clients.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["waves"], "properties": {"waves": {"type": "array"}}},
                {"required": ["sites"], "properties": {"sites": {"type": "array"}}},
            ]
        },
    )
    waves: list[list[str]] | None = Field(
        None, description='Explicit waves, in order; "tag:<tag>" names every site tagged so'
    )
    sites: list[str] | None = Field(
        None, description='Sites for a generated plan, in order; "tag:<tag>" as in waves'
    )
    canary: int = Field(1, ge=0, description="Generated plan: sites in the first wave")
    wave_size: int = Field(5, ge=1, description="Generated plan: sites per later wave")

    @model_validator(mode="after")
    def _one_kind(self) -> "PlanIn":
        if (self.waves is None) == (self.sites is None):
            raise ValueError("give either plan.waves (explicit) or plan.sites (generated)")
        return self

    def asked(self) -> campaign_plan.PlanAsked:
        return campaign_plan.PlanAsked.model_validate(self.model_dump())


def _no_budget(schema: dict[str, Any]) -> None:
    """State the rule below: a campaign's options carry no orphan-risk budget."""
    options = schema["properties"]["options"]
    schema["properties"]["options"] = {
        "allOf": [options, {"properties": {"orphan_risk_budget": {"maximum": 0}}}]
    }


class CampaignIn(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_budget)
    name: str = Field(min_length=1, max_length=200)
    plan: PlanIn
    certificate: CertificateUploadIn | BundleIdIn | None = Field(
        None,
        description="One certificate (inline, or {bundle_id} of an uploaded bundle) for every "
        "site its SANs cover (checked per site)",
    )
    certificates: dict[str, CertificateUploadIn | BundleIdIn] = Field(
        default_factory=dict, description="site -> its own certificate"
    )
    options: RotationOptionsIn = Field(default_factory=RotationOptionsIn)
    max_concurrent: int = Field(1, ge=1, description="Rotations running at once")
    max_failures: int = Field(0, ge=0, description="Halt when more rotations fail than this")
    approve_each_wave: bool = False
    change_id: str | None = Field(None, max_length=200)
    window: MaintenanceWindowIn | None = Field(
        None, description="No site of any wave starts outside this window"
    )
    wave_windows: dict[int, MaintenanceWindowIn] = Field(
        default_factory=dict,
        description="wave number (1 = first) -> its own window",
        json_schema_extra={"propertyNames": {"pattern": "^[1-9][0-9]{0,5}$"}},
    )
    site_windows: dict[str, MaintenanceWindowIn] = Field(
        default_factory=dict,
        description="site -> its window (default: the site's own window in the inventory); "
        "the site's rotation starts and swaps only in it",
    )

    @model_validator(mode="after")
    def _no_unaccepted_risk(self) -> "CampaignIn":
        if self.options.orphan_risk_budget > 0:
            raise ValueError(
                "a campaign cannot carry an orphan-risk budget: accept risks per rotation"
            )
        return self


class CampaignActionIn(_Body):
    reason: str = Field("", max_length=2000)


class CampaignDecisionIn(_Body):
    decision: Literal["continue", "abort"] = "continue"
    note: str = Field("", max_length=2000)


def _upload(body: CertificateUploadIn | BundleIdIn) -> preflight.Certificate:
    return certificate_of(body)


_ACTION: Responses = {
    409: problem(
        "The campaign's state does not allow this now, or it changed meanwhile (retry)",
        "action_not_possible",
        "busy",
    )
}


def campaigns_router(
    deps: Deps, role: Callable[[Any], Callable[..., Awaitable[Principal]]]
) -> APIRouter:
    router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
    Viewer = Annotated[Principal, Depends(role("viewer"))]
    Operator = Annotated[Principal, Depends(role("operator"))]
    Approver = Annotated[Principal, Depends(role("approver"))]

    async def view(state: CampaignState) -> CampaignOut:
        rotations_now = await campaign_records.rotations_of(state, db=deps.db)
        return campaign_view(state, rotations_now, deps.clock.now())

    @router.post(
        "",
        status_code=201,
        responses={
            200: {"description": "Already started with this Idempotency-Key: the same campaign",
                  "model": CampaignOut},
            409: problem("The Idempotency-Key was used for another request",
                         "idempotency_key_reused"),
            422: problem("A plan that cannot run (unknown site or tag, a site twice), a site "
                         "without a certificate, or a certificate that failed pre-flight",
                         "invalid_plan", "unknown_tag", "unknown_site", "missing_certificate",
                         "unknown_bundle"),
        },
    )  # fmt: skip
    async def create(
        body: CampaignIn,
        response: Response,
        who: Operator,
        idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
    ) -> CampaignOut:
        """Pre-flight every site's certificate, then start the campaign's first wave."""
        request = campaigns.CampaignRequest(
            name=body.name, plan=body.plan.asked(),
            uploads={site: _upload(u) for site, u in body.certificates.items()},
            default_upload=_upload(body.certificate) if body.certificate else None,
            options=body.options.stored(), max_concurrent=body.max_concurrent,
            max_failures=body.max_failures, approve_each_wave=body.approve_each_wave,
            change_id=body.change_id, window=body.window, wave_windows=dict(body.wave_windows),
            site_windows=dict(body.site_windows),
        )  # fmt: skip
        state, created = await campaigns.create_campaign(
            request, starter=deps.starter, by=who.name, principal=who.record(),
            idempotency_key=idempotency_key, body=body.model_dump(mode="json"),
        )  # fmt: skip
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/v1/campaigns/{state.campaign_id}"
        return await view(state)

    @router.get("")
    async def listing(_: Viewer, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> CampaignList:
        return CampaignList(
            items=[
                campaign_summary(s)
                for s in await campaign_records.list_campaigns(limit, db=deps.db)
            ]
        )

    @router.get("/{campaign_id}")
    async def get(campaign_id: str, _: Viewer) -> CampaignOut:
        """Sites by wave and state, clients summed over every rotation, a forecast of the end,
        and every decision waiting (the campaign's and its rotations')."""
        return await view(await campaign_records.get_campaign(campaign_id, db=deps.db))

    @router.get("/{campaign_id}/waves/{wave}")
    async def wave(campaign_id: str, wave: int, _: Viewer) -> CampaignWaveOut:
        """One wave (1 = the first): its sites, their clients summed, its window."""
        state = await campaign_records.get_campaign(campaign_id, db=deps.db)
        if not 1 <= wave <= len(state.waves):
            raise NotFoundError(
                f"campaign {campaign_id} has waves 1 to {len(state.waves)}", code="not_found"
            )
        return wave_view(state, wave - 1, await campaign_records.rotations_of(state, db=deps.db))

    @router.get("/{campaign_id}/sites/{site}")
    async def site(campaign_id: str, site: str, _: Viewer) -> CampaignSiteViewOut:
        """One site: its place in the plan, its rotation's state and clients, its events."""
        state = await campaign_records.get_campaign(campaign_id, db=deps.db)
        if site not in state.sites:
            raise NotFoundError(f"site {site!r} is not in campaign {campaign_id}", code="not_found")
        rotation_id = state.sites[site].rotation_id
        rotation = (
            await rotation_actions.get_rotation(rotation_id, db=deps.db) if rotation_id else None
        )
        return site_view(state, site, rotation)

    @router.get(
        "/{campaign_id}/at-risk",
        response_model=None,
        responses={200: streamed_list(CampaignAtRiskOut, "text/csv")},
    )
    async def at_risk(
        campaign_id: str, _: Viewer, format: Literal["json", "csv"] = "json"
    ) -> StreamingResponse:
        """Every at-risk client of every rotation of the campaign (the step-3 watch's list),
        one site after another, streamed; CSV cells a spreadsheet would run are quoted."""
        state = await campaign_records.get_campaign(campaign_id, db=deps.db)
        rows = campaign_export.at_risk_rows(state, db=deps.db, client_monitor=deps.client_monitor)
        name = f"campaign-{campaign_id}-at-risk.{format}"
        body, media = (at_risk_csv(rows), "text/csv") if format == "csv" else (
            at_risk_json(rows, campaign_id), "application/json")  # fmt: skip
        return StreamingResponse(
            body, media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )  # fmt: skip

    async def _act(
        campaign_id: str, action: campaign_driver.Action, who: Principal, reason: str
    ) -> CampaignOut:
        return await view(await campaign_driver.act(campaign_id, action, starter=deps.starter,
                                                    by=who.name, reason=reason))  # fmt: skip

    @router.post("/{campaign_id}/pause", responses=_ACTION)
    async def pause(
        campaign_id: str, who: Operator, body: CampaignActionIn | None = None
    ) -> CampaignOut:
        """No new rotations; the running ones go on."""
        return await _act(campaign_id, "pause", who, (body or CampaignActionIn()).reason)

    @router.post("/{campaign_id}/resume", responses=_ACTION)
    async def resume(campaign_id: str, who: Operator) -> CampaignOut:
        return await _act(campaign_id, "resume", who, "")

    @router.post("/{campaign_id}/cancel", responses=_ACTION)
    async def cancel(campaign_id: str, body: CampaignActionIn, who: Operator) -> CampaignOut:
        """No new rotations; the running ones are cancelled (and compensated)."""
        return await _act(campaign_id, "cancel", who, body.reason)

    @router.post("/{campaign_id}/approve", responses=_ACTION)
    async def approve(
        campaign_id: str, who: Approver, body: CampaignDecisionIn | None = None
    ) -> CampaignOut:
        """Answer the waiting decision: the next wave, or continue / abort past the budget."""
        given = body or CampaignDecisionIn()
        state = await campaign_driver.act(campaign_id, "approve", starter=deps.starter,
                                          by=who.name, reason=given.note,
                                          decision=given.decision)  # fmt: skip
        return await view(state)

    return router
