"""A rotation's history entry (GET /v1/rotations/{id}/events) as one line a person reads.

The terminal view and the web dashboard both show the history; a raw JSON payload wraps over
several lines and buries what happened (a percentage, a server, a reason) under ids and keys.
Each entry type that matters to an operator gets a sentence; any other falls back to its
scalar fields, never to nested JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Detail = dict[str, Any]

# Ids, keys and repeated context that say nothing to a reader of one rotation's history.
_NOISE = {
    "idempotency_key", "watch_id", "site", "bundle_ref", "backup_ref", "principal", "options",
    "certificate", "message_id", "causation_id", "groups", "originals", "target_serials",
    "pending_offline_by_days", "expected_fingerprint", "server",
}  # fmt: skip


def short_fingerprint(value: Any) -> str:
    """'4163b45d…9a449e': enough to tell two certificates apart at a glance."""
    clean = str(value or "").replace(":", "").lower()
    return f"{clean[:8]}…{clean[-6:]}" if len(clean) > 16 else clean


def _names(items: Any) -> str:
    names = [i.get("name") if isinstance(i, dict) else i for i in items or []]
    return ", ".join(str(n) for n in names if n) or "none"


def _counts(d: Detail) -> str:
    text = (
        f"{float(d.get('percent') or 0):.1f}% ({d.get('reached')}/{d.get('total')}), pending "
        f"{d.get('pending_online')} online / {d.get('pending_offline')} offline, "
        f"{d.get('orphan_risk')} at risk"
    )
    if d.get("forecast_complete_at") and float(d.get("percent") or 0) < 100:
        text += f", forecast {str(d['forecast_complete_at'])[:16].replace('T', ' ')}"
    if d.get("reason"):
        text += f"; {d['reason']}"
    return text


def _inspected(d: Detail) -> str:
    partners = d.get("partners") or []
    with_status = ", ".join(f"{p.get('name')} ({p.get('status_code')})" for p in partners)
    return f"SEPM {d.get('version')}; " + (
        f"replicates with {with_status}" if partners else "no replication partners"
    )


def _verification_set(d: Detail) -> str:
    groups = d.get("groups") or []
    return f"{d.get('mode')} in {len(groups)} group{'s' if len(groups) != 1 else ''}"


def _updated(d: Detail) -> str:
    ports = d.get("ports_verified") or {}
    return (
        f"{d.get('server')} serves {short_fingerprint(d.get('fingerprint'))} "
        f"on {len(ports)} port{'s' if len(ports) != 1 else ''} ({', '.join(sorted(ports))})"
    )


def _await(d: Detail) -> str:
    groups = d.get("groups") or []
    return (
        f"{len(groups)} groups, threshold {float(d.get('threshold') or 1) * 100:.0f}%, "
        f"clients seen within {d.get('stale_horizon_days')} days"
    )


def _requested(d: Detail) -> str:
    cert = d.get("certificate") or {}
    parts = [f"site {d.get('site')}"]
    if d.get("change_id"):
        parts.append(f"change {d['change_id']}")
    if cert.get("fingerprint_sha256"):
        parts.append(f"certificate {short_fingerprint(cert['fingerprint_sha256'])}")
    return ", ".join(parts)


def _decision(d: Detail) -> str:
    text = f"{d.get('decision')}: {d.get('reason') or 'no reason given'}"
    if d.get("change_id"):
        text += f" (change {d['change_id']})"
    if d.get("accepted_clients") is not None:
        text += f"; {len(d['accepted_clients'])} clients accepted at risk"
    return text


def _server(d: Detail) -> str:
    server = d.get("server")
    return str(server.get("name") if isinstance(server, dict) else server or "")


_BY_TYPE: dict[str, Callable[[Detail], str]] = {
    "RotationRequested": _requested,
    "SiteInspected": _inspected,
    "BreakReplication": lambda d: f"partners {_names(d.get('partners'))}",
    "ReplicationBroken": lambda d: f"broken: {_names(d.get('broken_partners'))}",
    "SetCertificateVerification": lambda d: f"mode {d.get('mode')}",
    "CertificateVerificationSet": _verification_set,
    "AwaitPolicyPropagation": _await,
    "PropagationProgressed": _counts,
    "PolicyPropagated": _counts,
    "PropagationStalled": _counts,
    "CertificateVerificationChecked": lambda d: (
        f"{d.get('locations_checked')} locations checked, "
        f"verification back on in {len(d.get('enabled') or [])}"
    ),
    "UpdateServerCertificate": _server,
    "RollbackServerCertificate": _server,
    "ServerCertificateUpdated": _updated,
    "ServerCertificateRolledBack": _updated,
    "RestoreReplication": lambda d: f"partners {_names(d.get('partners'))}",
    "ReplicationRestored": lambda d: ", ".join(
        f"{p.get('name')} {p.get('status_code')}" for p in d.get("partners") or []
    ),
    "DecisionMade": _decision,
}


def _scalars(detail: Detail) -> str:
    parts = []
    for key, value in detail.items():
        if key in _NOISE or value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            continue
        if isinstance(value, list):
            simple = all(not isinstance(v, dict | list) for v in value)
            value = ", ".join(map(str, value)) if simple and len(value) <= 5 else f"{len(value)}"
        parts.append(f"{key} {value}")
    return ", ".join(parts)


def entry_summary(entry: dict[str, Any]) -> str:
    """What the entry says, in one line without JSON (the type and actor are shown apart)."""
    detail = entry.get("detail")
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    if set(detail) == {"text"}:
        return str(detail["text"])
    kind, type_ = entry.get("kind"), str(entry.get("type"))
    if kind == "timer":
        return f"due {str(detail.get('due_at'))[:16].replace('T', ' ')}" + (
            " (ignored)" if detail.get("ignored") else ""
        )
    summarise = _BY_TYPE.get(type_)
    try:
        text = summarise(detail) if summarise else _scalars(detail)
    except (AttributeError, TypeError, ValueError):
        text = _scalars(detail)  # an older or newer payload shape: show what there is
    return " ".join(text.split())
