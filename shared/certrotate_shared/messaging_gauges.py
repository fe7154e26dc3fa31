"""What every service reports at scrape time about its messaging: its outbox and its
consumer's lag."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from certrotate_shared import metrics
from certrotate_shared.consumer import MessageConsumer
from certrotate_shared.envelope import utcnow
from certrotate_shared.tables import outbox
from certrotate_shared.utc_timestamps import as_utc


async def read_messaging_gauges(
    engine: AsyncEngine, consumer: MessageConsumer, service: str, gauges: metrics.Gauges
) -> None:
    """The outbox's depth and oldest message's age, and the lag per consumed partition."""
    async with engine.connect() as conn:
        depth, oldest = (
            await conn.execute(select(func.count(), func.min(outbox.c.created_at)))
        ).one()
    gauges.add(
        "certrotate_outbox_messages",
        "Messages committed to the outbox and not yet published",
        depth,
        service=service,
    )
    age = (utcnow() - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    gauges.add(
        "certrotate_outbox_oldest_message_age_seconds",
        "Age of the oldest unpublished outbox message (relay lag; 0 when empty)",
        max(age, 0.0),
        service=service,
    )
    for (topic, partition), lag in sorted((await consumer.lag()).items()):
        gauges.add(
            "certrotate_consumer_lag_messages",
            "Records on a topic partition this service has not committed yet",
            lag,
            service=service,
            topic=topic,
            partition=str(partition),
        )
