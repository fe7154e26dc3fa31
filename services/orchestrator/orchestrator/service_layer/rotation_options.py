"""A rotation's options: what the request leaves out comes from the operator's settings, what
it may accept depends on the caller's role, and its deadlines run in the saga's clock."""

from __future__ import annotations

from orchestrator.domain.state import AnswerDeadlines, RetryPolicy, RotationOptions
from orchestrator.service_layer.errors import ForbiddenError, InputRejectedError
from orchestrator.settings import Settings


def with_operator_defaults(requested: RotationOptions, settings: Settings) -> RotationOptions:
    """What the request leaves out comes from the operator's settings, not built-in values."""
    defaults = RotationOptions(
        stale_horizon_days=settings.stale_horizon_days,
        max_wait_days=settings.max_wait_days,
        exposure_limit_days=settings.exposure_limit_days,
        retry=RetryPolicy(
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            max_attempts=settings.retry_max_attempts,
        ),
        answer_deadlines=AnswerDeadlines(
            sepm_call_seconds=settings.answer_deadline_sepm_seconds,
            host_operation_seconds=settings.answer_deadline_host_operation_seconds,
            manual_host_operation_seconds=settings.answer_deadline_manual_seconds,
            restore_replication_seconds=settings.answer_deadline_restore_replication_seconds,
            resends=settings.answer_resends,
        ),
        max_reenable_loops=settings.max_reenable_loops,
    )
    return defaults.model_copy(
        update={name: getattr(requested, name) for name in requested.model_fields_set}
    )


def authorize_options(
    options: RotationOptions, *, may_approve: bool, settings: Settings
) -> RotationOptions:
    """Accepting clients at risk up front is the approver's call; settings cap it and can make
    every rotation wait for an approval."""
    budget = options.orphan_risk_budget
    cap = settings.max_orphan_risk_budget
    if cap is not None and budget > cap:
        raise InputRejectedError(
            f"orphan_risk_budget {budget} is above this server's maximum of {cap}",
            code="budget_above_maximum",
        )
    if budget > settings.operator_orphan_risk_budget and not may_approve:
        raise ForbiddenError(
            f"an orphan_risk_budget of {budget} accepts clients being cut off: it needs the "
            f"approver role (an operator may set at most {settings.operator_orphan_risk_budget})",
            code="approver_required",
        )
    if settings.require_approval and not options.require_approval:
        return options.model_copy(update={"require_approval": True})
    return options


def in_clock_time(options: RotationOptions, speed: float) -> RotationOptions:
    """Answer deadlines are real seconds (workers do not run faster under an accelerated clock,
    as in a rehearsal against the twin); the saga's timers run in clock time."""
    if speed == 1.0:
        return options
    limits = options.answer_deadlines
    scaled = limits.model_copy(
        update={
            "sepm_call_seconds": limits.sepm_call_seconds * speed,
            "host_operation_seconds": limits.host_operation_seconds * speed,
            "manual_host_operation_seconds": limits.manual_host_operation_seconds * speed,
            "restore_replication_seconds": limits.restore_replication_seconds * speed,
        }
    )
    return options.model_copy(update={"answer_deadlines": scaled})
