"""PostgreSQL: the unit of work's own statements, each one round trip whatever the number of
rows (arrays, so that the statement text never changes and stays prepared). They go to asyncpg
directly (UnitOfWork._driver), hence the $n parameters."""

from __future__ import annotations

from typing import Any, cast

import asyncpg

from certrotate_shared.envelope import Envelope, Event, message_class, utcnow
from certrotate_shared.outbox_signal import HandedRow

# What a commit writes (outbox rows, command outcomes) and its NOTIFY in ONE round trip. The
# outbox rows get their ids in the order given (the relay publishes in id order), and the
# statement returns them, in that order, for the hand-off to this process's relay.
_PG_OUTBOX = """sent AS (
    INSERT INTO outbox (message_id, topic, key, value, created_at)
    SELECT m, t, k, v, c FROM unnest(
        $1::varchar[], $2::varchar[], $3::varchar[], $4::bytea[], $5::timestamptz[]
    ) WITH ORDINALITY AS u(m, t, k, v, c, n) ORDER BY n
    RETURNING id
)"""
_PG_OUTCOMES = """recorded AS (
    INSERT INTO command_outcomes (idempotency_key, command_type, outcome_type, outcome_version,
                                  outcome_payload, recorded_at)
    SELECT * FROM unnest(
        ${0}::varchar[], ${1}::varchar[], ${2}::varchar[], ${3}::int[], ${4}::json[],
        ${5}::timestamptz[]
    )
    ON CONFLICT (idempotency_key) DO UPDATE SET
        command_type = excluded.command_type, outcome_type = excluded.outcome_type,
        outcome_version = excluded.outcome_version, outcome_payload = excluded.outcome_payload,
        recorded_at = excluded.recorded_at
    RETURNING 1
)"""
_PG_COMMIT_WRITES: dict[tuple[bool, bool, bool], str] = {}


def _pg_commit_writes(outbox_rows: bool, outcomes: bool, notify: bool) -> str:
    key = (outbox_rows, outcomes, notify)
    stmt = _PG_COMMIT_WRITES.get(key)
    if stmt is None:
        ctes, n = [], 0
        if outbox_rows:
            ctes.append(_PG_OUTBOX)
            n = 5
        if outcomes:
            ctes.append(_PG_OUTCOMES.format(*range(n + 1, n + 7)))
            n += 6
        columns = ["(SELECT array_agg(id ORDER BY id) FROM sent)" if outbox_rows else "NULL"]
        if notify:
            columns.append(f"pg_notify(${n + 1}, ${n + 2})")
        stmt = f"WITH {', '.join(ctes)} SELECT {', '.join(columns)}"
        _PG_COMMIT_WRITES[key] = stmt
    return stmt


def commit_writes(
    pending: list[tuple[str, Envelope]],
    outcomes: list[dict[str, Any]],
    notify: tuple[str, str] | None,
) -> tuple[str, list[Any]]:
    """The one statement (and its arguments) that writes a commit's outbox rows and command
    outcomes and sends its NOTIFY (channel, payload) when given. Its value: the outbox rows'
    ids in the order of `pending` (NULL without rows)."""
    args: list[Any] = []
    if pending:
        args += [
            [str(env.message_id) for _, env in pending],
            [topic for topic, _ in pending],
            [env.saga_id for _, env in pending],
            [env.to_bytes() for _, env in pending],
            [env.occurred_at for _, env in pending],
        ]
    if outcomes:
        args += [
            [o["idempotency_key"] for o in outcomes],
            [o["command_type"] for o in outcomes],
            [o["outcome_type"] for o in outcomes],
            [o["outcome_version"] for o in outcomes],
            [o["outcome_payload"] for o in outcomes],
            [o["recorded_at"] for o in outcomes],
        ]
    if notify is not None:
        # Delivered by PostgreSQL only when this transaction commits.
        args += list(notify)
    return _pg_commit_writes(bool(pending), bool(outcomes), notify is not None), args


def handed_rows(ids: list[int] | None, args: list[Any]) -> list[HandedRow]:
    """The outbox rows commit_writes() wrote, from its arguments and the ids it returned."""
    if not ids:
        return []
    _, topics, keys, values, created = args[:5]
    return [
        HandedRow(id=i, topic=t, key=k, value=v, created_at=c)
        for i, t, k, v, c in zip(ids, topics, keys, values, created, strict=True)
    ]


# A batch's inbox records and the outcomes already recorded for its commands, in one round
# trip. A message id given twice is returned once (the caller takes the first).
_PG_FIRST_DELIVERIES = """WITH fresh AS (
    INSERT INTO inbox (message_id, message_type, received_at)
    SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::timestamptz[])
    ON CONFLICT DO NOTHING RETURNING message_id
)
SELECT message_id AS k, NULL AS t, NULL AS v, NULL AS p FROM fresh
UNION ALL
SELECT idempotency_key, COALESCE(outcome_type, ''), outcome_version, CAST(outcome_payload AS text)
FROM command_outcomes WHERE idempotency_key = ANY($4::varchar[])"""

# "No outcome recorded for this key" in the read-ahead (distinct from None: accepted, running).
NOT_SEEN: Any = object()


async def first_deliveries(
    driver: asyncpg.Connection,
    envelopes: list[Envelope],
    idempotency_keys: list[str],
    outcomes: dict[str, Event | None],
) -> list[bool]:
    """Record a batch in the inbox; for each envelope whether this is its first delivery. The
    outcomes recorded for `idempotency_keys` are added to `outcomes` (NOT_SEEN: none)."""
    now = utcnow()
    rows = await driver.fetch(
        _PG_FIRST_DELIVERIES,
        [str(e.message_id) for e in envelopes],
        [e.type for e in envelopes],
        [now] * len(envelopes),
        idempotency_keys,
    )
    fresh: set[str] = set()
    for key, outcome_type, version, payload in rows:
        if outcome_type is None:
            fresh.add(key)
        elif key not in outcomes:
            outcomes[key] = _outcome(outcome_type, version, payload)
    for key in idempotency_keys:
        outcomes.setdefault(key, NOT_SEEN)
    firsts = []
    for envelope in envelopes:
        message_id = str(envelope.message_id)
        firsts.append(message_id in fresh)
        fresh.discard(message_id)
    return firsts


def _outcome(outcome_type: str, version: int | None, payload: str | None) -> Event | None:
    """A recorded outcome row as recorded_outcome() returns it ('' type: accepted, running)."""
    if not outcome_type:
        return None
    cls = message_class(outcome_type, version or 1)
    return cast(Event, cls.model_validate_json(payload or "{}"))
