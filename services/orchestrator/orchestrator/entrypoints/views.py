"""The rotation as the API shows it: every reading an operator needs on one page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.domain.saga import gate_orphan_risk
from orchestrator.domain.state import PropagationWait, SagaState
from orchestrator.domain.steps import step_named
from orchestrator.domain.window import is_open, next_opening
from orchestrator.entrypoints import gate_models as gates_out
from orchestrator.entrypoints import rotation_models as out


def rotation_summary(s: SagaState) -> out.RotationSummaryOut:
    step = step_named(s.phase, s.step)
    return out.RotationSummaryOut(
        id=s.saga_id, site=s.site, state=s.status,
        current_step=out.StepNow(name=s.step, number=step.number, title=step.title),
        reason=s.reason, change_id=s.change_id, created_at=s.created_at, updated_at=s.updated_at,
    )  # fmt: skip


def rotation_view(s: SagaState, *, now: datetime, tasks: list[dict[str, Any]]) -> out.RotationOut:
    step = step_named(s.phase, s.step)
    return out.RotationOut(
        **{k: v for k, v in rotation_summary(s) if k != "current_step"},
        phase=s.phase,
        current_step=out.CurrentStepOut(
            name=s.step,
            number=step.number,
            title=step.title,
            attempt=s.attempt,
            server=s.awaiting.server if s.awaiting else None,
            waiting_for=s.awaiting.command if s.awaiting else None,
        ),
        requested_by=s.requested_by,
        certificate=_copy(out.CertificateOut, s.certificate),
        options=_copy(out.OptionsOut, s.options),
        gates=_gates(s, now),
        propagation=[_wait(w) for w in s.waits],
        servers=[
            out.ServerProgressOut(
                name=p.name,
                status=p.status,
                fingerprint_before=p.fingerprint_before,
                fingerprint_after=p.fingerprint_after,
                ports_verified=p.ports_verified,
                backup_taken=p.backup_ref is not None,
                error=p.error,
            )
            for p in s.servers
        ],
        replication=out.ReplicationOut(
            partners=[_copy(out.PartnerOut, p) for p in s.partners],
            broken=s.broken_partners,
            restored=[_copy(out.PartnerOut, p) for p in s.restored_partners],
        ),
        verification=out.VerificationOut(
            off_since=s.verification_off_since,
            restored_at=s.verification_restored_at,
            exposure_limit_days=s.options.exposure_limit_days,
            exposure_alert=_copy(out.ExposureAlertOut, s.exposure_alert),
            groups=[_copy(out.GroupOut, g) for g in s.disabled_groups],
        ),
        steps=[_copy(out.StepRecordOut, r) for r in s.steps],
        pending_decision=_copy(out.PendingDecisionOut, s.pending_decision),
        hold=out.HoldOut(paused=s.hold, reason=s.hold_reason),
        cancel_requested=s.abort_requested,
        open_tasks=tasks,
        timers=dict(s.timers),
    )


def _copy(model: type[out.Out], stored: Any) -> Any:
    """The stored value in its answer's shape (the same fields, checked against the model)."""
    if stored is None:
        return None
    return model.model_validate(stored, from_attributes=True)


def _gates(s: SagaState, now: datetime) -> gates_out.GatesOut:
    reading = wait.reading if (wait := s.current_wait("await_disable_propagation")) else None
    at_risk = gate_orphan_risk(s)
    window = s.options.maintenance_window
    window_open = is_open(window, now) if window else None
    return gates_out.GatesOut(
        propagation=gates_out.PropagationGateOut(
            passed=s.propagation_gate_passed,
            threshold=s.options.propagation_threshold,
            stale_horizon_days=s.options.stale_horizon_days,
            percent=reading.percent if reading else None,
            reached=reading.reached if reading else None,
            total=reading.total if reading else None,
            pending_online=reading.pending_online if reading else None,
            pending_offline=reading.pending_offline if reading else None,
            stale=reading.stale if reading else None,
        ),
        orphan_risk=gates_out.OrphanRiskGateOut(
            at_risk=at_risk,
            budget=s.options.orphan_risk_budget,
            passed=s.risk_acceptance is not None
            or (at_risk is not None and at_risk <= s.options.orphan_risk_budget),
            accepted=_copy(gates_out.RiskAcceptanceOut, s.risk_acceptance),
        ),
        approval=gates_out.ApprovalGateOut(
            required=s.options.require_approval,
            passed=not s.options.require_approval or s.approval is not None,
            approved_by=s.approval.by if s.approval else None,
            approved_at=s.approval.at if s.approval else None,
            note=s.approval.note if s.approval else None,
        ),
        maintenance_window=gates_out.WindowGateOut(
            configured=window is not None,
            **(window.model_dump() if window else {}),
            open_now=window_open,
            passed=window is None or bool(window_open),
            next_opening=next_opening(window, now) if window and not window_open else None,
        ),
        waiting_for=s.gate_waiting_for,
    )


def _wait(w: PropagationWait) -> out.PropagationWaitOut:
    return out.PropagationWaitOut(
        step=w.step, watch_id=w.watch_id, outcome=w.outcome, started_at=w.started_at,
        finished_at=w.finished_at, deadline=w.deadline, target_serials=w.target_serials,
        detail=w.detail,
        **(w.reading.model_dump() if w.reading else {"percent": None, "forecast_complete_at": None}),
    )  # fmt: skip
