"""The clients a rotation would cut off: their lists (streamed from the client-monitor, never
held whole here), and the list an approver accepts with "proceed", kept by reference.

A "proceed" freezes the watch's at-risk list in the client-monitor first; the history records
the list's id, count and SHA-256 (of its JSON-lines export), not a million rows in one row.
The accepted list stays readable through the rotation for as long as the record stands.
"""

from __future__ import annotations

from typing import Any

from certrotate_shared.clock import Clock
from orchestrator.adapters.clients import (
    ClientMonitorClient,
    InvalidListRequestError,
    ListStream,
    UpstreamUnavailableError,
)
from orchestrator.adapters.repository import SagaRepository
from orchestrator.domain.inputs import DecisionMade
from orchestrator.domain.state import SagaState
from orchestrator.service_layer.deps import Database, TimerAlarm
from orchestrator.service_layer.errors import (
    ConflictError,
    InputRejectedError,
    NotFoundError,
    UpstreamError,
)
from orchestrator.service_layer.rotation_actions import act, get_rotation


def current_watch_id(state: SagaState) -> str | None:
    wait = state.current_wait()
    return wait.watch_id if wait else None


async def decide_with_at_risk_list(
    saga_id: str,
    decision: DecisionMade,
    *,
    db: Database,
    clock: Clock,
    alarm: TimerAlarm,
    client_monitor: ClientMonitorClient,
) -> SagaState:
    """A "proceed" names the clients it accepts: freeze them first and keep the reference."""
    detail: dict[str, Any] = {}
    if decision.decision == "proceed":
        state = await get_rotation(saga_id, db=db)
        watch_id = current_watch_id(state)
        accepted: dict[str, Any] | None = None
        if watch_id is not None and state.step in ("await_disable_propagation", "gates"):
            try:
                accepted = await client_monitor.accept_list(watch_id)
            except UpstreamUnavailableError as exc:
                raise UpstreamError(
                    f"{exc}; a 'proceed' must name the clients it accepts, so it cannot be "
                    "recorded now",
                    code="client_monitor_unavailable",
                ) from None
        decision = DecisionMade(
            by=decision.by, decision="proceed", reason=decision.reason,
            change_id=decision.change_id, extend_days=decision.extend_days,
            accepted_count=accepted["count"] if accepted else 0, principal=decision.principal,
        )  # fmt: skip
        detail = {"accepted_list": accepted, "watch_id": watch_id}
    return await act(saga_id, decision, db=db, clock=clock, alarm=alarm, detail=detail)


async def at_risk_clients(
    saga_id: str,
    *,
    db: Database,
    client_monitor: ClientMonitorClient,
    status: str,
    fmt: str,
    watch_id: str | None,
    cursor: str | None,
    limit: int | None,
) -> ListStream:
    state = await get_rotation(saga_id, db=db)
    watch = watch_id or current_watch_id(state)
    if watch is None:
        raise ConflictError(
            "this rotation has not started a propagation watch yet", code="no_watch"
        )
    if watch not in {w.watch_id for w in state.waits}:
        raise NotFoundError(f"rotation {saga_id} has no watch {watch!r}")
    return await _relayed(
        client_monitor.clients(watch, status=status, fmt=fmt, cursor=cursor, limit=limit)
    )


async def accepted_lists(saga_id: str, *, db: Database) -> list[dict[str, Any]]:
    """Every list accepted in this rotation, oldest first, as its history records them."""
    await get_rotation(saga_id, db=db)
    found: list[dict[str, Any]] = []
    after: int | None = 0
    async with db() as uow:
        history = SagaRepository(uow.session)
        while after is not None:
            items, after = await history.history(saga_id, after=after, limit=500)
            for item in items:
                reference = (item.get("detail") or {}).get("accepted_list")
                if item["type"] == "DecisionMade" and reference:
                    found.append({**reference, "seq": item["seq"], "by": item["actor"]})
    return found


async def accepted_clients(
    saga_id: str,
    *,
    db: Database,
    client_monitor: ClientMonitorClient,
    list_id: str | None,
    fmt: str,
    cursor: str | None,
    limit: int | None,
) -> ListStream:
    """The clients an approver accepted in this rotation (the latest list unless named)."""
    lists = await accepted_lists(saga_id, db=db)
    chosen = next((a for a in reversed(lists) if list_id in (None, a["list_id"])), None)
    if chosen is None:
        what = f"no accepted list {list_id!r}" if list_id else "no accepted at-risk list"
        raise NotFoundError(f"rotation {saga_id} has {what}")
    return await _relayed(
        client_monitor.accepted_clients(chosen["list_id"], fmt=fmt, cursor=cursor, limit=limit)
    )


async def _relayed(opening: Any) -> ListStream:
    try:
        stream: ListStream = await opening
    except UpstreamUnavailableError as exc:
        raise UpstreamError(str(exc), code="client_monitor_unavailable") from None
    except InvalidListRequestError as exc:
        raise InputRejectedError(str(exc), code="invalid_cursor") from None
    return stream
