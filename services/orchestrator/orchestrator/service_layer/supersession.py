"""One rotation of a site at a time, when a webhook brings a newer certificate: the rotation
it supersedes is cancelled (it compensates), and the new one waits, held, until every
rotation of the site has ended; then it starts, unless a failure may have left the site
changed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from certrotate_shared.unit_of_work import UnitOfWork
from orchestrator.adapters import site_locks, transition_reads
from orchestrator.adapters.repository import SagaRepository
from orchestrator.adapters.webhook_tables import rotation_waits
from orchestrator.domain import webhooks as rules
from orchestrator.domain.history import Noted
from orchestrator.domain.inputs import ActionRejectedError, CancelRequested, ResumeRequested
from orchestrator.domain.state import SagaState
from orchestrator.domain.steps import FORWARD
from orchestrator.service_layer import site_topology
from orchestrator.service_layer.errors import ConflictError
from orchestrator.service_layer.transitions import advance, record_history


async def supersede(
    uow: UnitOfWork, verdict: rules.TriggerVerdict, saga_id: str, actor: str, now: datetime
) -> str:
    """Cancel the rotation being superseded (it compensates), and have the new one wait until
    every rotation of the site has ended: two rotations must never change one site at once."""
    if verdict.rotation_id is not None:
        try:
            await advance(
                uow,
                verdict.rotation_id,
                CancelRequested(by=actor, reason=f"superseded by rotation {saga_id}"),
                now,
            )
        except ActionRejectedError as exc:
            raise ConflictError(
                f"rotation {verdict.rotation_id} cannot be superseded: {exc}",
                code="site_busy",
                rotation_id=verdict.rotation_id,
            ) from None
    await uow.session.execute(
        insert(rotation_waits),
        [{"rotation_id": saga_id, "blocker_id": b} for b in verdict.wait_for],
    )
    return f"waits for {', '.join(verdict.wait_for)} to end (superseded by a newer certificate)"


async def release_waiting(uow: UnitOfWork, ended: SagaState) -> None:
    """A rotation ended: start the rotations that waited only for it. After a failure that
    may have left the site changed they stay held: a person must look first."""
    waiting_ids = await transition_reads.waiting_for(uow.session, ended.saga_id)
    if not waiting_ids:
        return
    await uow.session.execute(
        delete(rotation_waits).where(rotation_waits.c.blocker_id == ended.saga_id)
    )
    changed = ended.status == "failed" and (
        ended.verification_touched or bool(ended.broken_partners) or ended.swap_started
    )
    for rotation_id in waiting_ids:
        others = (
            await uow.session.execute(
                select(rotation_waits.c.blocker_id).where(
                    rotation_waits.c.rotation_id == rotation_id
                )
            )
        ).first()
        if others is not None:
            continue
        if changed:
            _note(uow, rotation_id, ended, f"not started: rotation {ended.saga_id} failed and "
                  "may have left the site changed; resume once the site is checked")  # fmt: skip
            continue
        loaded = await SagaRepository(uow.session).get(rotation_id)
        if loaded is None or loaded[0].terminal:
            continue  # cancelled meanwhile: nothing to start
        farm = await site_topology.replication_farm(uow.session, loaded[0].site)
        held = await site_locks.holders(uow.session, farm)
        if held:
            _note(uow, rotation_id, ended, f"not started: the site is held by rotation "
                  f"{sorted(held.values())[0]}; resume it once that one has ended")  # fmt: skip
            continue
        await site_locks.acquire(uow.session, farm, rotation_id, ended.updated_at)
        try:
            await advance(uow, rotation_id, ResumeRequested(by="webhook"), ended.updated_at,
                          loaded=loaded)  # fmt: skip
        except ActionRejectedError:
            continue  # resumed by an operator meanwhile


def _note(uow: UnitOfWork, rotation_id: str, ended: SagaState, text: str) -> None:
    # The waiting rotation is still held at its first step (it was never started).
    record_history(uow, rotation_id, [Noted(at=ended.updated_at, step=FORWARD[0].name, text=text)])
