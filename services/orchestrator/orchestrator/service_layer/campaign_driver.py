"""What moves a campaign on: an operator's action, and the campaign loop's ticks.

A tick decides in one versioned transaction (two replicas: one wins, the other re-reads), then
starts each chosen site's rotation through the rotations' own path with an Idempotency-Key
derived from the campaign and the site: a retry after a crash, or a second replica, gets the
same rotation back, never a second one. Site locks still refuse a site another rotation holds."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError

from certrotate_shared.clock import Clock
from certrotate_shared.logs import log_context
from orchestrator.adapters import campaign_tables as table
from orchestrator.adapters.clients import RegisteredBundle
from orchestrator.domain import campaign as domain
from orchestrator.domain import campaign_actions as actions
from orchestrator.domain import campaign_waves as waves
from orchestrator.domain.campaign import CampaignState
from orchestrator.domain.inputs import CancelRequested
from orchestrator.domain.saga import can_abort
from orchestrator.domain.state import TERMINAL, RotationOptions
from orchestrator.service_layer import rotation_actions
from orchestrator.service_layer.campaign_records import get_campaign, update_campaign
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    InputRejectedError,
    NotFoundError,
    ServiceError,
)
from orchestrator.service_layer.rotations import RotationStarter

log = logging.getLogger(__name__)


Action = Literal["pause", "resume", "cancel"]


async def act(
    campaign_id: str,
    action: Action | Literal["approve"],
    *,
    starter: RotationStarter,
    by: str,
    reason: str = "",
    decision: Literal["continue", "abort"] = "continue",
) -> CampaignState:
    """An operator's (or approver's) action on the whole campaign; 409 when it makes no sense."""
    db, now = starter.db, starter.clock.now()

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
        await update_campaign(db, campaign_id, apply)
    except actions.CampaignRejectedError as exc:
        raise ConflictError(str(exc), code="action_not_possible") from None
    await tick(campaign_id, starter=starter)
    return await get_campaign(campaign_id, db=db)


async def tick(
    campaign_id: str,
    *,
    starter: RotationStarter,
) -> None:
    """Record ended rotations, decide, then start and cancel what the decision says."""
    db, now = starter.db, starter.clock.now()

    cancels: list[domain.CampaignSite] = []

    def decide(state: CampaignState) -> None:
        waves.note_rotations(state, seen, now)
        waves.observe(state, statuses, now)
        waves.progress(state, now)
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
        state = await update_campaign(db, campaign_id, decide)
    except ConflictError:
        return  # another replica is driving it right now; the next tick catches up
    for site in [s for s in state.sites.values() if s.status == "starting"]:
        await _start(state, site, starter=starter)
    for site in cancels:
        await _cancel(state, site, db=db, clock=starter.clock, alarm=starter.alarm)


def rotation_key(campaign_id: str, site: str) -> str:
    return f"campaign:{campaign_id}:{hashlib.sha256(site.encode()).hexdigest()[:32]}"


async def _start(
    state: CampaignState,
    site: domain.CampaignSite,
    *,
    starter: RotationStarter,
) -> None:
    bundle = site.bundle
    registered = RegisteredBundle(
        bundle_ref=bundle["bundle_ref"], fingerprint_sha256=bundle["fingerprint_sha256"],
        subject=bundle.get("subject", ""), sans=list(bundle.get("sans", [])),
        not_after=datetime.fromisoformat(bundle["not_after"]) if bundle.get("not_after") else None,
        certificate_pem=bundle.get("certificate_pem", ""),
    )  # fmt: skip
    db, now = starter.db, starter.clock.now()
    try:
        rotation, _ = await starter.start(
            site=site.site, upload=None, bundle=registered,
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
        await update_campaign(
            db, state.campaign_id, lambda s: waves.start_deferred(s, site.site, note, now)
        )
        return
    except (InputRejectedError, NotFoundError) as exc:
        note = f"rotation refused: {exc.detail}"
        await update_campaign(
            db, state.campaign_id, lambda s: waves.start_refused(s, site.site, note, now)
        )
        return
    except (ServiceError, IntegrityError):
        log.warning("campaign %s: starting site %s failed; retrying", state.campaign_id, site.site)
        return  # stays "starting": the next tick asks again with the same Idempotency-Key
    await update_campaign(
        db, state.campaign_id, lambda s: waves.started(s, site.site, rotation.saga_id, now)
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
        await rotation_actions.act(
            site.rotation_id,
            CancelRequested(by=last.get("by", state.created_by), reason=reason),
            db=db, clock=clock, alarm=alarm,
        )  # fmt: skip
    except ConflictError:
        rotation = await rotation_actions.get_rotation(site.rotation_id, db=db)
        if not rotation.terminal and rotation.phase == "forward" and not can_abort(rotation):
            now = clock.now()
            await update_campaign(
                db, state.campaign_id, lambda s: actions.cancel_refused(s, site.site, now)
            )
        # Otherwise it ended or is compensating already: nothing more to ask.
    except ServiceError:
        log.warning("campaign %s: cancelling %s failed; retrying", state.campaign_id, site.site)

        def retry(s: CampaignState) -> None:
            s.sites[site.site].cancel_sent = False

        await update_campaign(db, state.campaign_id, retry)


async def _tick_logged(campaign_id: str, starter: RotationStarter) -> None:
    # One campaign that fails to advance must not hold up the others.
    try:
        with log_context(campaign_id=campaign_id):
            await tick(campaign_id, starter=starter)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("campaign %s: could not advance; retrying", campaign_id)


async def run_campaigns(
    *,
    starter: RotationStarter,
) -> None:
    """Drive every unfinished campaign; a poll loop, so a restart simply carries on."""
    poll = starter.settings.timer_poll_seconds
    while True:
        try:
            async with starter.db() as uow:
                ids = await table.unfinished(uow.session)
            for campaign_id in ids:
                await _tick_logged(campaign_id, starter)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign loop failed; retrying")
        await asyncio.sleep(poll)
