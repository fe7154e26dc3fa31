"""The orchestrator's part of /metrics: rotations, campaigns, exposure, timers and dead letters
read from its tables at scrape time, step durations observed as steps end, and who may scrape
when metrics_auth is `role`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

from sqlalchemy import case, func, select

from certrotate_shared import metrics
from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters.campaign_tables import campaigns
from orchestrator.adapters.orm import dead_letters, sagas, timers
from orchestrator.adapters.repository import from_db, to_db
from orchestrator.domain.campaign import CampaignStatus
from orchestrator.domain.state import TERMINAL, SagaState, Status
from orchestrator.service_layer import tokens

if TYPE_CHECKING:
    from certrotate_shared.runtime import ServiceRuntime

# Rotations that may still have verification off: running ones, and failed ones that could not
# put it back (completed and compensated rotations restored it).
_MAY_BE_EXPOSED = ("completed", "compensated")


async def read_gauges(runtime: ServiceRuntime, gauges: metrics.Gauges) -> None:
    """Add the orchestrator's gauges (a handful of grouped counts on indexed tables)."""
    now = runtime.clock.now()
    async with runtime.engine.connect() as conn:
        by_status = {
            status: count
            for status, count in await conn.execute(
                select(sagas.c.status, func.count()).group_by(sagas.c.status)
            )
        }
        by_step = (
            await conn.execute(
                select(sagas.c.step, func.count())
                .where(sagas.c.status.not_in(sorted(TERMINAL)))
                .group_by(sagas.c.step)
            )
        ).all()
        exposed = (
            await conn.execute(
                select(sagas.c.site, sagas.c.state).where(sagas.c.status.not_in(_MAY_BE_EXPOSED))
            )
        ).all()
        campaign_status = {
            status: count
            for status, count in await conn.execute(
                select(campaigns.c.status, func.count()).group_by(campaigns.c.status)
            )
        }
        scheduled, due = (
            await conn.execute(
                select(func.count(), func.sum(case((timers.c.due_at <= to_db(now), 1), else_=0)))
            )
        ).one()
        letters = (
            await conn.execute(
                select(dead_letters.c.replayed_at.is_(None), func.count()).group_by(
                    dead_letters.c.replayed_at.is_(None)
                )
            )
        ).all()
    for status in get_args(Status):
        gauges.add(
            "certrotate_rotations", "Rotations by state", by_status.get(status, 0), state=status
        )
    for step, count in by_step:
        gauges.add(
            "certrotate_rotations_active",
            "Rotations not yet ended, by the step each is on",
            count,
            step=step,
        )
    for status in get_args(CampaignStatus):
        gauges.add(
            "certrotate_campaigns",
            "Campaigns by state",
            campaign_status.get(status, 0),
            state=status,
        )
    for site, seconds in _verification_off(exposed, now).items():
        gauges.add(
            "certrotate_verification_off_seconds",
            "How long (clock seconds) certificate verification has been off at a site",
            seconds,
            site=site,
        )
    gauges.add("certrotate_timers", "Durable timers scheduled", scheduled or 0)
    gauges.add(
        "certrotate_timers_due",
        "Timers due and not fired yet (the timer loop's backlog)",
        due or 0,
    )
    counts = {bool(open_): n for open_, n in letters}
    for state, open_ in (("open", True), ("replayed", False)):
        gauges.add(
            "certrotate_dead_letters",
            "Dead-lettered messages the orchestrator was told of, open or replayed",
            counts.get(open_, 0),
            state=state,
        )


def _verification_off(rows: Any, now: datetime) -> dict[str, float]:
    off: dict[str, float] = {}
    for site, state in rows:
        since, restored = state.get("verification_off_since"), state.get("verification_restored_at")
        if since and not restored:
            seconds = (now - from_db(datetime.fromisoformat(since))).total_seconds()
            off[site] = max(off.get(site, 0.0), seconds, 0.0)
    return off


def observe_ended_steps(uow: UnitOfWork, state: SagaState, open_before: int) -> None:
    """Once the transaction commits, time the step records that ended in this transition
    (`open_before`: the index of the first record not yet ended before it)."""
    ended = [
        (record.name, record.status, (record.finished_at - record.started_at).total_seconds())
        for record in state.steps[open_before:]
        if record.finished_at is not None
    ]
    if not ended:
        return

    def observe() -> None:
        for step, outcome, seconds in ended:
            metrics.STEP_DURATION.labels(step, outcome).observe(max(seconds, 0.0))

    uow.on_commit(observe)


def first_open_step(state: SagaState) -> int:
    """The index from which step records may still end."""
    steps = state.steps
    return len(steps) - 1 if steps and steps[-1].finished_at is None else len(steps)


async def metrics_access(
    runtime: ServiceRuntime,
    admin_token: str,
    authorization: str | None,
    least_role: tokens.Role,
) -> tuple[int, str] | None:
    """None if the bearer token's role may read /metrics, else (status, what to do)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 401, "send Authorization: Bearer <API token>"
    async with runtime.uow() as uow:
        principal = await tokens.authenticate(
            uow.session, token.strip(), admin_token=admin_token, now=runtime.clock.now()
        )
    if principal is None:
        return 401, "unknown or revoked API token"
    if not principal.may(least_role):
        return (
            403,
            f"/metrics needs the {least_role} role; token {principal.name!r} has {principal.role}",
        )
    return None
