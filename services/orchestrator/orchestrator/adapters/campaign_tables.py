"""The campaigns table: one row per campaign, its state as JSON, saved with a version check."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import JSON, Column, DateTime, Integer, String, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import Table, sagas
from orchestrator.adapters.repository import ConcurrentUpdateError, to_db
from orchestrator.domain.campaign import TERMINAL, CampaignState
from orchestrator.domain.state import SagaState

campaigns = Table(
    "campaigns",
    Column("campaign_id", String(36), primary_key=True),
    Column("status", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Idempotency-Key of the creating request and a keyed hash of its body (migration o0009).
    Column("idempotency_key", String(200), unique=True),
    Column("body_hash", String(64)),
)


async def add(
    session: AsyncSession, state: CampaignState, key: str | None, body_hash: str | None
) -> None:
    await session.execute(
        insert(campaigns).values(
            campaign_id=state.campaign_id, status=state.status, version=1,
            state=state.model_dump(mode="json"), created_at=to_db(state.created_at),
            updated_at=to_db(state.updated_at), idempotency_key=key, body_hash=body_hash,
        )
    )  # fmt: skip


async def get(session: AsyncSession, campaign_id: str) -> tuple[CampaignState, int] | None:
    row = (
        await session.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id))
    ).first()
    if row is None:
        return None
    return CampaignState.model_validate(row.state), row.version


async def by_key(session: AsyncSession, key: str) -> tuple[str, str] | None:
    """(campaign id, body hash) of the campaign created with this Idempotency-Key."""
    row = (
        await session.execute(
            select(campaigns.c.campaign_id, campaigns.c.body_hash).where(
                campaigns.c.idempotency_key == key
            )
        )
    ).first()
    return (row.campaign_id, row.body_hash) if row else None


async def save(session: AsyncSession, state: CampaignState, version: int) -> None:
    """Raises ConcurrentUpdateError when another replica saved the campaign meanwhile."""
    result = await session.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == state.campaign_id, campaigns.c.version == version)
        .values(
            status=state.status, version=version + 1, state=state.model_dump(mode="json"),
            updated_at=to_db(state.updated_at),
        )
    )  # fmt: skip
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdateError(f"campaign {state.campaign_id} changed meanwhile")


async def unfinished(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        select(campaigns.c.campaign_id)
        .where(campaigns.c.status.not_in(sorted(TERMINAL)))
        .order_by(campaigns.c.created_at)
    )
    return list(rows.scalars())


async def listing(session: AsyncSession, limit: int) -> list[CampaignState]:
    rows = await session.execute(
        select(campaigns.c.state).order_by(campaigns.c.created_at.desc()).limit(limit)
    )
    return [CampaignState.model_validate(r) for r in rows.scalars()]


async def rotation_states(session: AsyncSession, saga_ids: Sequence[str]) -> dict[str, SagaState]:
    """The campaign's running rotations as they stand (at most the cap: a few rows)."""
    if not saga_ids:
        return {}
    rows = await session.execute(
        select(sagas.c.saga_id, sagas.c.state).where(sagas.c.saga_id.in_(list(saga_ids)))
    )
    return {r.saga_id: SagaState.model_validate(r.state) for r in rows}
