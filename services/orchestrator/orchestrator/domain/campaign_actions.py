"""Operator and approver actions on a whole campaign, and the cancels it sends its rotations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from orchestrator.domain.campaign import CampaignSite, CampaignState, CampaignStatus


class CampaignRejectedError(ValueError):
    """An operator action that makes no sense in the campaign's state (HTTP 409)."""


# A claimed cancel whose rotation still runs after this long was never asked (a crash between
# the claim and the ask); sooner, the ask is merely still on its way (another tick's).
CANCEL_RETRY = timedelta(minutes=2)


def claim_cancels(
    state: CampaignState, live: Mapping[str, str], now: datetime
) -> list[CampaignSite]:
    """The running rotations to ask to cancel, marked so that one replica alone asks for each.

    `live`: rotation id -> its status now. One marked long ago but still running or paused was
    never asked (the process died in between): ask again."""
    if state.status != "cancelling":
        return []

    def unasked(site: CampaignSite) -> bool:
        if not site.cancel_sent:
            return True
        stale = site.cancel_sent_at is None or now - site.cancel_sent_at >= CANCEL_RETRY
        return stale and live.get(site.rotation_id or "") in ("running", "paused")

    chosen = [
        s for s in state.sites.values()
        if s.status == "running" and not s.cancel_refused and unasked(s)
    ]  # fmt: skip
    for site in chosen:
        site.cancel_sent = True
        site.cancel_sent_at = now
    return chosen


def cancel_refused(state: CampaignState, site: str, now: datetime) -> None:
    """Past its swap a rotation only recovers forward: it runs to its end, uncancelled."""
    entry = state.sites[site]
    entry.cancel_refused = True
    entry.note = "past its swap: finishing (only forward recovery is possible)"
    state.record(now, "CancelRefused", site=site, rotation_id=entry.rotation_id)
    state.updated_at = now


def pause(state: CampaignState, by: str, now: datetime) -> None:
    _require(state, {"running", "awaiting_approval", "halted"}, "pause")
    state.status = "paused"
    state.record(now, "CampaignPaused", by=by)


def resume(state: CampaignState, by: str, now: datetime) -> None:
    _require(state, {"paused"}, "resume")
    # A decision that was waiting before the pause is still waiting.
    waiting: dict[str, CampaignStatus] = {
        "failure_budget": "halted",
        "orphaned_clients": "halted",
        "wave_approval": "awaiting_approval",
    }
    state.status = waiting.get(state.decision.kind if state.decision else "", "running")
    state.record(now, "CampaignResumed", by=by)


def cancel(state: CampaignState, by: str, reason: str, now: datetime) -> None:
    _require(state, {"running", "paused", "awaiting_approval", "halted"}, "cancel")
    state.status = "cancelling"
    state.decision = None
    state.record(now, "CampaignCancelled", by=by, reason=reason)


def approve(
    state: CampaignState, by: str, decision: Literal["continue", "abort"], note: str, now: datetime
) -> None:
    """An approver answers the waiting decision: the next wave, or past the failure budget."""
    waiting = state.decision
    if waiting is None or state.status not in ("awaiting_approval", "halted"):
        raise CampaignRejectedError(f"campaign is {state.status}: no decision is waiting")
    if decision == "abort":
        state.record(now, "CampaignAborted", by=by, note=note, decision=waiting.kind)
        state.status = "cancelling"
        state.decision = None
        return
    if waiting.kind == "wave_approval":
        state.approved_waves.append(waiting.wave)
    elif waiting.kind == "orphaned_clients":
        for site in state.sites.values():
            site.orphans_tolerated = site.orphaned_outside_risk
    else:
        state.tolerated_failures = state.failures()
    state.record(now, "DecisionMade", by=by, note=note, decision=waiting.kind, wave=waiting.wave)
    state.decision = None
    state.status = "running"


def _require(state: CampaignState, allowed: set[str], action: str) -> None:
    if state.status not in allowed:
        raise CampaignRejectedError(f"cannot {action} a campaign that is {state.status}")
