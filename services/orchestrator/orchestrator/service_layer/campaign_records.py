"""Campaigns as they are stored: read, listed, and changed in a versioned transaction (the
loop, an operator and another replica may all change one at once: the loser decides again)."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.adapters import campaign_tables as table
from orchestrator.adapters.repository import ConcurrentUpdateError, SagaRepository
from orchestrator.domain.campaign import CampaignState
from orchestrator.domain.state import SagaState
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import ConflictError, NotFoundError


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


async def update_campaign(
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
