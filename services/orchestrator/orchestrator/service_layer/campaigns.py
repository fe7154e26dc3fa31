"""Campaigns as the API and the campaign loop see them: create, act, and drive (tick).

A tick decides in one versioned transaction (two replicas: one wins, the other re-reads), then
starts each chosen site's rotation through the rotations' own path with an Idempotency-Key
derived from the campaign and the site: a retry after a crash, or a second replica, gets the
same rotation back, never a second one. Site locks still refuse a site another rotation holds."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from certrotate_shared.clock import Clock
from certrotate_shared.logs import log_context
from certrotate_shared.vault import Vault
from orchestrator.adapters import campaign_tables as table
from orchestrator.adapters.clients import CertificatesClient
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository
from orchestrator.domain import campaign as domain
from orchestrator.domain import campaign_actions as actions
from orchestrator.domain import campaign_plan
from orchestrator.domain.campaign import CampaignState
from orchestrator.domain.inputs import CancelRequested
from orchestrator.domain.saga import can_abort
from orchestrator.domain.state import TERMINAL, MaintenanceWindow, RotationOptions, SagaState
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import inventory, retention, rotations
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    InputRejectedError,
    NotFoundError,
    ServiceError,
)
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignRequest:
    name: str
    plan: campaign_plan.PlanAsked
    # site -> upload; a site left out uses `default_upload` (its SANs are checked per site).
    uploads: dict[str, rotations.Certificate]
    default_upload: rotations.Certificate | None
    options: RotationOptions
    max_concurrent: int
    max_failures: int
    approve_each_wave: bool
    change_id: str | None
    # Every wave's window (None: any time), a wave's own (1-based) and a site's own, which
    # overrides the one the inventory gives the site.
    window: MaintenanceWindow | None = None
    wave_windows: dict[int, MaintenanceWindow] = field(default_factory=dict)
    site_windows: dict[str, MaintenanceWindow] = field(default_factory=dict)


async def create_campaign(
    request: CampaignRequest,
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
    by: str,
    idempotency_key: str | None,
    body: dict[str, Any],
    principal: dict[str, str] | None = None,
) -> tuple[CampaignState, bool]:
    """Pre-flight every site's certificate, then store the campaign; (campaign, created)."""
    fingerprint = rotations.request_fingerprint(settings, body)
    if idempotency_key:
        existing = await _by_key(db, settings, idempotency_key, body)
        if existing is not None:
            return existing, False
    async with db() as uow:
        tagged = await inventory.sites_tagged(uow.session, campaign_plan.tags_asked(request.plan))
    try:
        waves = campaign_plan.resolve_plan(request.plan, tagged)
        ordered = campaign_plan.check_waves(waves)
    except campaign_plan.UnknownTagError as exc:
        raise InputRejectedError(str(exc), code="unknown_tag") from None
    except campaign_plan.InvalidPlanError as exc:
        raise InputRejectedError(str(exc), code="invalid_plan") from None
    unknown = sorted(set(request.uploads) - set(ordered))
    if unknown:
        raise InputRejectedError(
            f"certificates given for sites not in the plan: {', '.join(unknown)}",
            code="invalid_plan",
        )
    farms: dict[str, str] = {}
    targets = {}
    site_windows = dict(request.site_windows)
    partners: dict[str, set[str]] = {}
    async with db() as uow:
        for site in ordered:
            targets[site] = await inventory.site_target(uow.session, site)
            graph = await inventory.replication_graph(uow.session, site)
            farms[site] = min(graph)
            partners[site] = graph[site]
            own = await inventory.site_window(uow.session, site)
            if site not in site_windows and own is not None:
                site_windows[site] = own
    waves = campaign_plan.farm_order(waves, farms, partners)
    wave_windows = _wave_windows(request, waves, ordered)
    for where, window in [*site_windows.items(), *enumerate(wave_windows, 1)]:
        try:
            if window is not None:
                check_window(window, clock.now())
        except InvalidWindowError as exc:
            named = f"site {where!r}" if isinstance(where, str) else f"wave {where}"
            raise InputRejectedError(f"{named}: {exc}", code="invalid_window") from None
    bundles = await _preflight_all(
        request, ordered, targets, db=db, clock=clock, settings=settings, certificates=certificates
    )
    options = rotations.with_operator_defaults(request.options, settings)
    state = domain.new_campaign(
        campaign_id=str(uuid.uuid4()), name=request.name, waves=waves, farms=farms,
        bundles=bundles, max_concurrent=request.max_concurrent,
        max_failures=request.max_failures, approve_each_wave=request.approve_each_wave,
        options=options.model_dump(mode="json"), change_id=request.change_id, by=by,
        now=clock.now(), principal=principal,
        targets={"plan": request.plan.model_dump(mode="json", exclude_none=True),
                 "tags": tagged},
        site_windows=site_windows, wave_windows=wave_windows,
    )  # fmt: skip
    try:
        async with db() as uow:
            await table.add(uow.session, state, idempotency_key, fingerprint)
            await uow.commit()
    except IntegrityError:
        if idempotency_key:
            existing = await _by_key(db, settings, idempotency_key, body)
            if existing is not None:
                return existing, False
        raise
    # A site's turn may come weeks later: its bundle must not expire meanwhile.
    await retention.hold_now(certificates, [b["bundle_ref"] for b in bundles.values()])
    await tick(state.campaign_id, db=db, clock=clock, settings=settings, vault=vault,
               certificates=certificates, alarm=alarm)  # fmt: skip
    return await get_campaign(state.campaign_id, db=db), True


# Pre-flights in flight at once: each is a round trip to the certificates service and key
# derivation there; one after another, 200 sites held POST /v1/campaigns for minutes.
PREFLIGHT_CONCURRENCY = 8


async def _preflight_all(
    request: CampaignRequest,
    ordered: list[str],
    targets: dict[str, Any],
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    certificates: CertificatesClient,
) -> dict[str, dict[str, Any]]:
    """Every site's certificate pre-flighted for that site, a few at once; a refusal names
    the first refused site in plan order, as a serial pre-flight would have."""
    uploads = {}
    # Sites after the first one without a certificate were never pre-flighted: still not.
    for site in ordered:
        upload = request.uploads.get(site, request.default_upload)
        if upload is None:
            break
        uploads[site] = upload
    gate = asyncio.Semaphore(PREFLIGHT_CONCURRENCY)

    async def one(site: str) -> rotations.RegisteredBundle:
        async with gate:
            return await rotations.preflight(
                site, uploads[site], rotations.site_hostnames(targets[site]),
                db=db, clock=clock, settings=settings, certificates=certificates,
            )  # fmt: skip

    outcomes = await asyncio.gather(*(one(site) for site in uploads), return_exceptions=True)
    bundles: dict[str, dict[str, Any]] = {}
    for site, outcome in zip(uploads, outcomes, strict=True):
        if isinstance(outcome, InputRejectedError):
            raise InputRejectedError(f"site {site!r}: {outcome.detail}", code=outcome.code)
        if isinstance(outcome, BaseException):
            raise outcome
        bundles[site] = {
            "bundle_ref": outcome.bundle_ref, "fingerprint_sha256": outcome.fingerprint_sha256,
            "subject": outcome.subject, "sans": outcome.sans,
            "not_after": outcome.not_after.isoformat() if outcome.not_after else None,
            "certificate_pem": outcome.certificate_pem,
        }  # fmt: skip
    if len(uploads) < len(ordered):
        missing = ordered[len(uploads)]
        raise InputRejectedError(
            f"no certificate for site {missing!r}: give one in certificates or a default",
            code="missing_certificate",
        )
    return bundles


def _wave_windows(
    request: CampaignRequest, waves: list[list[str]], ordered: list[str]
) -> list[MaintenanceWindow | None]:
    beyond = sorted(n for n in request.wave_windows if not 1 <= n <= len(waves))
    strangers = sorted(set(request.site_windows) - set(ordered))
    if beyond or strangers:
        raise InputRejectedError(
            f"windows given for waves the plan does not have ({beyond}; it has {len(waves)}) "
            f"or sites not in it ({strangers})",
            code="invalid_plan",
        )
    return [request.wave_windows.get(n, request.window) for n in range(1, len(waves) + 1)]


async def _by_key(
    db: Database, settings: Settings, key: str, body: dict[str, Any]
) -> CampaignState | None:
    async with db() as uow:
        found = await table.by_key(uow.session, key)
    if found is None:
        return None
    campaign_id, body_hash = found
    if not rotations.same_request(settings, body, body_hash):
        raise ConflictError(
            f"Idempotency-Key {key!r} was used for a different request (campaign "
            f"{campaign_id}); use a new key for a new campaign",
            code="idempotency_key_reused",
        )
    return await get_campaign(campaign_id, db=db)


async def get_campaign(campaign_id: str, *, db: Database) -> CampaignState:
    async with db() as uow:
        loaded = await table.get(uow.session, campaign_id)
    if loaded is None:
        raise NotFoundError(f"no campaign {campaign_id!r}")
    return loaded[0]


async def rotations_of(state: CampaignState, *, db: Database) -> dict[str, SagaState]:
    """site -> its rotation, for the sites whose rotation is running (what a view shows)."""
    found: dict[str, SagaState] = {}
    async with db() as uow:
        repo = SagaRepository(uow.session)
        for site in state.active():
            loaded = await repo.get(site.rotation_id) if site.rotation_id else None
            if loaded is not None:
                found[site.site] = loaded[0]
    return found


async def list_campaigns(limit: int, *, db: Database) -> list[CampaignState]:
    async with db() as uow:
        return await table.listing(uow.session, limit)


Action = Literal["pause", "resume", "cancel"]


async def act(
    campaign_id: str,
    action: Action | Literal["approve"],
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
    by: str,
    reason: str = "",
    decision: Literal["continue", "abort"] = "continue",
) -> CampaignState:
    """An operator's (or approver's) action on the whole campaign; 409 when it makes no sense."""
    now = clock.now()

    def apply(state: CampaignState) -> None:
        if action == "pause":
            actions.pause(state, by, now)
        elif action == "resume":
            actions.resume(state, by, now)
        elif action == "cancel":
            actions.cancel(state, by, reason, now)
        else:
            actions.approve(state, by, decision, reason, now)
        state.updated_at = now

    try:
        await _update(db, campaign_id, apply)
    except actions.CampaignRejectedError as exc:
        raise ConflictError(str(exc), code="action_not_possible") from None
    await tick(campaign_id, db=db, clock=clock, settings=settings, vault=vault,
               certificates=certificates, alarm=alarm)  # fmt: skip
    return await get_campaign(campaign_id, db=db)


async def _update(
    db: Database, campaign_id: str, change: Callable[[CampaignState], None]
) -> CampaignState:
    for _ in range(10):
        try:
            async with db() as uow:
                loaded = await table.get(uow.session, campaign_id)
                if loaded is None:
                    raise NotFoundError(f"no campaign {campaign_id!r}")
                state, version = loaded
                before = state.model_dump(exclude={"updated_at"})
                change(state)
                if state.model_dump(exclude={"updated_at"}) == before:
                    return state  # most ticks decide nothing: no write, no version bump
                await table.save(uow.session, state, version)
                await uow.commit()
                return state
        except ConcurrentUpdateError:
            continue  # the loop or another replica saved it meanwhile: decide again
    raise ConflictError("the campaign is changing too fast; try again", code="busy")


async def tick(
    campaign_id: str,
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
) -> None:
    """Record ended rotations, decide, then start and cancel what the decision says."""
    now = clock.now()

    cancels: list[domain.CampaignSite] = []

    def decide(state: CampaignState) -> None:
        domain.note_rotations(state, seen, now)
        domain.observe(state, statuses, now)
        domain.progress(state, now)
        cancels[:] = actions.claim_cancels(state, found, now)

    async with db() as uow:
        loaded = await table.get(uow.session, campaign_id)
        if loaded is None or loaded[0].terminal:
            return
        running = [s.rotation_id for s in loaded[0].active() if s.rotation_id]
        seen = await table.rotation_states(uow.session, running)
    found = {rid: rotation.status for rid, rotation in seen.items()}
    statuses = {rid: status for rid, status in found.items() if status in TERMINAL}
    try:
        state = await _update(db, campaign_id, decide)
    except ConflictError:
        return  # another replica is driving it right now; the next tick catches up
    for site in [s for s in state.sites.values() if s.status == "starting"]:
        await _start(state, site, db=db, clock=clock, settings=settings, vault=vault,
                     certificates=certificates, alarm=alarm)  # fmt: skip
    for site in cancels:
        await _cancel(state, site, db=db, clock=clock, alarm=alarm)


def rotation_key(campaign_id: str, site: str) -> str:
    return f"campaign:{campaign_id}:{hashlib.sha256(site.encode()).hexdigest()[:32]}"


async def _start(
    state: CampaignState,
    site: domain.CampaignSite,
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
) -> None:
    bundle = site.bundle
    registered = rotations.RegisteredBundle(
        bundle_ref=bundle["bundle_ref"], fingerprint_sha256=bundle["fingerprint_sha256"],
        subject=bundle.get("subject", ""), sans=list(bundle.get("sans", [])),
        not_after=datetime.fromisoformat(bundle["not_after"]) if bundle.get("not_after") else None,
        certificate_pem=bundle.get("certificate_pem", ""),
    )  # fmt: skip
    now = clock.now()
    try:
        rotation, _ = await rotations.create_rotation(
            db=db, clock=clock, settings=settings, vault=vault, certificates=certificates,
            alarm=alarm, site=site.site, upload=None, bundle=registered,
            options=RotationOptions.model_validate(domain.rotation_options(state, site.site)),
            change_id=state.change_id,
            requested_by=f"{state.created_by} (campaign {state.name})", principal=state.principal,
            idempotency_key=rotation_key(state.campaign_id, site.site),
            body={"campaign": state.campaign_id, "site": site.site,
                  "bundle_ref": bundle["bundle_ref"]},
        )  # fmt: skip
    except ConflictError as exc:
        if exc.code != "site_busy":
            log.warning("campaign %s: site %s refused: %s", state.campaign_id, site.site, exc)
            return  # stays "starting"; the campaign's view shows it and the loop asks again
        note = f"waiting: {exc.detail}"
        await _update(
            db, state.campaign_id, lambda s: domain.start_deferred(s, site.site, note, now)
        )
        return
    except (InputRejectedError, NotFoundError) as exc:
        note = f"rotation refused: {exc.detail}"
        await _update(
            db, state.campaign_id, lambda s: domain.start_refused(s, site.site, note, now)
        )
        return
    except (ServiceError, IntegrityError):
        log.warning("campaign %s: starting site %s failed; retrying", state.campaign_id, site.site)
        return  # stays "starting": the next tick asks again with the same Idempotency-Key
    await _update(
        db, state.campaign_id, lambda s: domain.started(s, site.site, rotation.saga_id, now)
    )


async def _cancel(
    state: CampaignState,
    site: domain.CampaignSite,
    *,
    db: Database,
    clock: Clock,
    alarm: TimerAlarm,
) -> None:
    assert site.rotation_id is not None
    # The rotation's history names who stopped the campaign and why, not its creator.
    stopped = [e for e in state.events if e["type"] in ("CampaignCancelled", "CampaignAborted")]
    last = stopped[-1] if stopped else {}
    why = last.get("reason") or last.get("note") or "no reason given"
    reason = f"campaign {state.name} cancelled: {why}"
    try:
        await rotations.act(
            site.rotation_id,
            CancelRequested(by=last.get("by", state.created_by), reason=reason),
            db=db, clock=clock, alarm=alarm,
        )  # fmt: skip
    except ConflictError:
        rotation = await rotations.get_rotation(site.rotation_id, db=db)
        if not rotation.terminal and rotation.phase == "forward" and not can_abort(rotation):
            now = clock.now()
            await _update(
                db, state.campaign_id, lambda s: actions.cancel_refused(s, site.site, now)
            )
        # Otherwise it ended or is compensating already: nothing more to ask.
    except ServiceError:
        log.warning("campaign %s: cancelling %s failed; retrying", state.campaign_id, site.site)

        def retry(s: CampaignState) -> None:
            s.sites[site.site].cancel_sent = False

        await _update(db, state.campaign_id, retry)


async def _tick_logged(campaign_id: str, **dependencies: Any) -> None:
    # One campaign that fails to advance must not hold up the others.
    try:
        with log_context(campaign_id=campaign_id):
            await tick(campaign_id, **dependencies)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("campaign %s: could not advance; retrying", campaign_id)


async def run_campaigns(
    *,
    db: Database,
    clock: Clock,
    settings: Settings,
    vault: Vault,
    certificates: CertificatesClient,
    alarm: TimerAlarm,
) -> None:
    """Drive every unfinished campaign; a poll loop, so a restart simply carries on."""
    poll = settings.timer_poll_seconds
    while True:
        try:
            async with db() as uow:
                ids = await table.unfinished(uow.session)
            for campaign_id in ids:
                await _tick_logged(campaign_id, db=db, clock=clock, settings=settings,
                                   vault=vault, certificates=certificates, alarm=alarm)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign loop failed; retrying")
        await asyncio.sleep(poll)
